/**
 * Seals one artifact to the membership captured at the trigger and writes it crash-safe to
 * `<state dir>/events/spool/<id>.sealed` (agent/storage: temp, fsync, rename, fsync dir), then
 * returns the SealedArtifact record the upload sink takes over.
 * Must never write plaintext, seal to a key that is not in the owner-signed membership, or seal
 * to nobody (ERR_EVENTS_NO_VIEWER_KEYS: nothing is written).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LenscapError } from '../errors.ts';
import { sealArtifact } from '../sealing/artifact.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import type { ArtifactKind, SealedArtifact } from './artifact.ts';

/** The owner-signed membership at the trigger: its version and every member's HPKE key. */
export interface MembershipKeys {
  version: number;
  keys: Array<{ kid: string; publicKey: JsonWebKey }>;
}

/** Where the events room learns the keys (agent/owner's `current()` + `viewerKeys()`, wired by the controller). */
export type MembershipKeySource = () => MembershipKeys | undefined;

export function artifactId(serial: string, eventId: string, kind: ArtifactKind): string {
  return `${serial}-${eventId}-${kind === 'snapshot' ? 'snap' : 'clip'}`;
}

export async function sealToSpool(p: {
  serial: string;
  eventId: string;
  kind: ArtifactKind;
  plaintext: Uint8Array;
  startedAt: number;
  durationMs: number;
  membership: MembershipKeys;
  spoolDir: string;
}): Promise<SealedArtifact> {
  if (p.membership.keys.length === 0)
    throw new LenscapError('ERR_EVENTS_NO_VIEWER_KEYS', 'the membership has no viewer key: nothing recorded');
  const id = artifactId(p.serial, p.eventId, p.kind);
  const contentType = p.kind === 'snapshot' ? 'image/jpeg' : 'video/mp4';
  let sealed: Uint8Array;
  try {
    sealed = await sealArtifact({
      kind: p.kind,
      membershipVersion: p.membership.version,
      id,
      serial: p.serial,
      contentType,
      startedAtMs: p.startedAt,
      durationMs: p.durationMs,
      recipients: p.membership.keys,
      plaintext: p.plaintext,
    });
  } catch (err) {
    throw new LenscapError(
      'ERR_EVENTS_SEAL',
      `sealing ${p.kind} failed: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  const path = join(p.spoolDir, `${id}.sealed`);
  try {
    mkdirSync(p.spoolDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(path, sealed);
  } catch (err) {
    throw new LenscapError(
      'ERR_EVENTS_SPOOL',
      `writing ${id}.sealed failed: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  return {
    v: 1,
    id,
    eventId: p.eventId,
    kind: p.kind,
    serial: p.serial,
    startedAt: p.startedAt,
    durationMs: p.durationMs,
    size: sealed.length,
    sha256: createHash('sha256').update(sealed).digest('hex'),
    contentType,
    sealedTo: p.membership.keys.map((k) => k.kid),
    membershipVersion: p.membership.version,
    path,
  };
}
