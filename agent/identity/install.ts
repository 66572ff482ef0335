/**
 * Crash-safe installation of a set of identity files (provisioning and renewal), so a power cut at
 * any moment leaves either the old complete identity or the new complete one:
 *
 *   1. stage   — write every file into <stateDir>/.identity-staging/ (0700), each fsynced
 *   2. commit  — write the manifest COMMIT there atomically: from here on the install rolls forward
 *   3. move    — rename each staged file over its target (atomic per file), fsync each target dir
 *   4. clean   — remove COMMIT, then the staging dir
 *
 * `recoverInstall` (run by provisioning and at agent start) finishes a committed install or removes
 * an uncommitted staging dir. Must never leave a key readable by others, nor write outside the state dir.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { LenscapError } from '../errors.ts';
import { fsyncDir, writeFileAtomic } from '../storage/atomic-file.ts';

export const STAGING_DIR = '.identity-staging';
const COMMIT = 'COMMIT';

export type InstallStep = 'staged' | 'committed' | `moved:${string}` | 'cleaned';

export interface InstallFile {
  /** Absolute target path inside the state dir. */
  path: string;
  data: string;
  mode: number;
}

export interface InstallOptions {
  stateDir: string;
  files: InstallFile[];
  /** Called after each step; tests throw here to simulate a power cut. */
  onStep?: (step: InstallStep) => void;
}

interface Manifest {
  files: Array<{ staged: string; target: string; mode: number }>;
}

function inside(root: string, path: string): string {
  const rel = relative(resolve(root), resolve(path));
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep))
    throw new LenscapError('ERR_IDENTITY_INSTALL', `refusing to write outside the state dir: ${path}`);
  return rel;
}

/** Creates the state dir (0700) and each needed subdirectory (0700). */
export function ensureStateDirs(stateDir: string, dirs: string[]): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  for (const d of dirs) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    // mkdir's mode is masked by umask and ignored for existing dirs: set it explicitly.
    if ((statSync(d).mode & 0o077) !== 0) chmodSync(d, 0o700);
  }
}

export function installFiles(opts: InstallOptions): void {
  const { stateDir } = opts;
  const staging = join(stateDir, STAGING_DIR);
  recoverInstall(stateDir); // finish or clear whatever an earlier run left
  ensureStateDirs(stateDir, [...new Set(opts.files.map((f) => dirname(f.path)))]);
  mkdirSync(staging, { mode: 0o700 });
  const manifest: Manifest = { files: [] };
  opts.files.forEach((f, i) => {
    const rel = inside(stateDir, f.path);
    const staged = `${i}.${rel.replace(/[\\/]/g, '_')}`;
    writeFileAtomic(join(staging, staged), f.data, f.mode);
    manifest.files.push({ staged, target: rel, mode: f.mode });
  });
  opts.onStep?.('staged');
  writeFileAtomic(join(staging, COMMIT), JSON.stringify(manifest), 0o600);
  fsyncDir(stateDir);
  opts.onStep?.('committed');
  rollForward(stateDir, manifest, opts.onStep);
}

function rollForward(stateDir: string, manifest: Manifest, onStep?: (step: InstallStep) => void): void {
  const staging = join(stateDir, STAGING_DIR);
  for (const f of manifest.files) {
    const from = join(staging, f.staged);
    const to = join(stateDir, f.target);
    if (existsSync(from)) {
      ensureStateDirs(stateDir, [dirname(to)]);
      renameSync(from, to);
      chmodSync(to, f.mode);
      fsyncDir(dirname(to));
    }
    onStep?.(`moved:${f.target}`);
  }
  rmSync(join(staging, COMMIT), { force: true });
  rmSync(staging, { recursive: true, force: true });
  fsyncDir(stateDir);
  onStep?.('cleaned');
}

/**
 * Finishes a committed install or discards an uncommitted one. Returns what it did, for the
 * provisioning output and the agent's log.
 */
export function recoverInstall(stateDir: string): 'none' | 'finished' | 'discarded' {
  const staging = join(stateDir, STAGING_DIR);
  if (!existsSync(staging)) return 'none';
  let manifest: Manifest | undefined;
  try {
    manifest = JSON.parse(readFileSync(join(staging, COMMIT), 'utf8')) as Manifest;
  } catch {
    manifest = undefined; // no (or torn) COMMIT: never committed
  }
  if (manifest && Array.isArray(manifest.files)) {
    for (const f of manifest.files) inside(stateDir, join(stateDir, f.target));
    rollForward(stateDir, manifest);
    return 'finished';
  }
  rmSync(staging, { recursive: true, force: true });
  fsyncDir(stateDir);
  return 'discarded';
}

/** Files left in staging (tests). */
export function stagingContents(stateDir: string): string[] {
  const staging = join(stateDir, STAGING_DIR);
  return existsSync(staging) ? readdirSync(staging) : [];
}
