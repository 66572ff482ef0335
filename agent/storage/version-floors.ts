/**
 * Version floors for signed documents, kept on disk: for each document kind (`binding`,
 * `trust_bundle`, and any later kind such as an owner-signed membership) the highest version this
 * camera has ever installed. A restart, or a key rotation that un-verifies the installed document,
 * must not reset the floor, or an older (an ex-owner's) document would be accepted again.
 * Written crash-safely (atomic-file.ts). Must never lower a floor, and never start from a floor
 * file it cannot read whole (that fails closed with a coded error; only a missing file is empty).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LenscapError } from '../errors.ts';
import { writeFileAtomic } from './atomic-file.ts';

const KIND = /^[a-z][a-z0-9_]{0,31}$/;
const MAX_KINDS = 32;
const MAX_FILE_BYTES = 4096;

export class VersionFloors {
  private constructor(
    private readonly file: string,
    private readonly floors: Map<string, number>,
  ) {}

  /** Reads the floor file; absent means no floor yet (first start, or an older agent's state dir). */
  static open(file: string): VersionFloors {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new VersionFloors(file, new Map());
      throw new LenscapError(
        'ERR_VERSION_FLOORS_INVALID',
        `version floor file ${file} is unreadable (${(err as NodeJS.ErrnoException).code})`,
        { path: file },
      );
    }
    return new VersionFloors(file, parseFloors(text, file));
  }

  get(kind: string): number | undefined {
    return this.floors.get(checkKind(kind));
  }

  /** Raises the floor of `kind` to `version` (never lowers it) and persists before returning. */
  raise(kind: string, version: number): void {
    checkKind(kind);
    if (!Number.isSafeInteger(version) || version < 0)
      throw new LenscapError(
        'ERR_VERSION_FLOORS_INVALID',
        `version ${version} for ${kind} is not an integer`,
      );
    const current = this.floors.get(kind);
    if (current !== undefined && current >= version) return;
    // Two rooms keep floors in this one file (grants: trust_bundle, binding; owner: membership,
    // owner_claim), each through its own instance: merge with what is on disk so that one never
    // writes back another's floor as it was when it opened the file (never lower, never forget).
    const next = new Map(this.floors);
    for (const [k, v] of onDisk(this.file)) if ((next.get(k) ?? -1) < v) next.set(k, v);
    next.set(kind, version);
    if (next.size > MAX_KINDS)
      throw new LenscapError('ERR_VERSION_FLOORS_INVALID', `more than ${MAX_KINDS} document kinds`);
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, `${JSON.stringify(Object.fromEntries([...next].sort()))}\n`, 0o600);
    for (const [k, v] of next) this.floors.set(k, v);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.floors);
  }
}

/** The floors another instance may have written since we opened the file (empty when absent). */
function onDisk(file: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new LenscapError(
      'ERR_VERSION_FLOORS_INVALID',
      `version floor file ${file} is unreadable (${(err as NodeJS.ErrnoException).code})`,
      { path: file },
    );
  }
  return parseFloors(text, file);
}

function checkKind(kind: string): string {
  if (!KIND.test(kind)) throw new LenscapError('ERR_VERSION_FLOORS_INVALID', `bad document kind "${kind}"`);
  return kind;
}

function parseFloors(text: string, file: string): Map<string, number> {
  const bad = (why: string) =>
    new LenscapError('ERR_VERSION_FLOORS_INVALID', `version floor file ${file}: ${why}`, { path: file });
  if (text.length > MAX_FILE_BYTES) throw bad(`larger than ${MAX_FILE_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad('not a JSON object');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_KINDS) throw bad(`more than ${MAX_KINDS} kinds`);
  const floors = new Map<string, number>();
  for (const [kind, v] of entries) {
    if (!KIND.test(kind)) throw bad(`bad document kind "${kind.slice(0, 40)}"`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw bad(`floor of ${kind} is not an integer`);
    floors.set(kind, v);
  }
  return floors;
}
