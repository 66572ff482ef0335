/**
 * Start checks on the whole state tree, not just the identity: another local user who can write the
 * state dir (or any dir or file in it carrying trust, binding, audit, replay or queued events) could
 * swap `trust/` and mint grants the camera accepts. Walks the tree with lstat (never following a
 * link): every entry must be owned by this user (or root), nothing may be writable by group or
 * others, no symlink anywhere, and the files the agent trusts must be regular files.
 * Must never follow a symlink, never let the agent start on doubt: every refusal is a LenscapError
 * with a stable code naming the path.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { LenscapError } from '../errors.ts';
import type { StateLayout } from '../state-layout.ts';

export const STATE_ERRORS = {
  permissions: 'ERR_STATE_PERMISSIONS',
  owner: 'ERR_STATE_OWNER',
  symlink: 'ERR_STATE_SYMLINK',
  notRegular: 'ERR_STATE_NOT_REGULAR',
  tooLarge: 'ERR_STATE_TREE_TOO_LARGE',
} as const;

/** A state tree is a few dozen entries; far more means something is wrong (and bounds the walk). */
const MAX_ENTRIES = 10_000;
const MAX_DEPTH = 8;

export interface StateTreeOptions {
  /** Owners allowed besides root; default: this process's effective uid. */
  uid?: number;
}

function describeMode(st: Stats): string {
  return `0${(st.mode & 0o777).toString(8)}`;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LenscapError(
      STATE_ERRORS.permissions,
      `cannot inspect ${path} (${(err as NodeJS.ErrnoException).code}); check its owner and mode`,
      { path },
    );
  }
}

function checkEntry(path: string, st: Stats, uid: number): void {
  if (st.isSymbolicLink())
    throw new LenscapError(
      STATE_ERRORS.symlink,
      `${path} is a symlink; nothing in the state dir may point elsewhere (remove it and restore the real ${st.isDirectory() ? 'directory' : 'file'})`,
      { path },
    );
  if (st.uid !== uid && st.uid !== 0)
    throw new LenscapError(
      STATE_ERRORS.owner,
      `${path} is owned by uid ${st.uid}, not by the agent (uid ${uid}) or root; run \`chown ${uid} ${path}\` and ask who put it there`,
      { path, uid: st.uid },
    );
  if ((st.mode & 0o022) !== 0)
    throw new LenscapError(
      STATE_ERRORS.permissions,
      `${path} is writable by group/others (mode ${describeMode(st)}); run \`chmod go-w ${path}\` (and check what was changed)`,
      { path, mode: describeMode(st) },
    );
}

/**
 * Checks the state tree. Absent entries are fine here (the identity check names what is missing);
 * present ones must pass.
 */
export function checkStateTree(paths: StateLayout, opts: StateTreeOptions = {}): void {
  const uid = opts.uid ?? process.geteuid?.() ?? 0;
  const rootStat = lstatOrUndefined(paths.root);
  if (!rootStat) return;
  checkEntry(paths.root, rootStat, uid);
  if (!rootStat.isDirectory())
    throw new LenscapError(STATE_ERRORS.notRegular, `state dir ${paths.root} is not a directory`, {
      path: paths.root,
    });

  // The directories and files the agent reads its trust from: the right kind, where present.
  const dirs = [
    paths.identityDir,
    paths.cloudDir,
    paths.trustDir,
    paths.ownerDir,
    paths.grantsDir,
    paths.auditDir,
    paths.eventsDir,
  ];
  const files = [
    paths.deviceKey,
    paths.deviceCert,
    paths.chain,
    paths.deviceCa,
    paths.provisioning,
    paths.brokerCa,
    paths.trustRoot,
    paths.trustBundle,
    paths.binding,
    paths.versionFloors,
    paths.claimSecret,
    paths.ownerState,
    paths.replayCache,
    paths.auditLog,
    `${paths.auditLog}.1`,
    paths.eventQueue,
  ];
  for (const d of dirs) {
    const st = lstatOrUndefined(d);
    if (st && !st.isSymbolicLink() && !st.isDirectory())
      throw new LenscapError(STATE_ERRORS.notRegular, `${d} must be a directory`, { path: d });
  }
  for (const f of files) {
    const st = lstatOrUndefined(f);
    if (st && !st.isSymbolicLink() && !st.isFile())
      throw new LenscapError(STATE_ERRORS.notRegular, `${f} must be a regular file`, { path: f });
  }

  // Then everything in the tree, whatever its name: owner, mode, no symlink.
  let seen = 0;
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      throw new LenscapError(
        STATE_ERRORS.permissions,
        `cannot list ${dir} (${(err as NodeJS.ErrnoException).code}); check its owner and mode`,
        { path: dir },
      );
    }
    for (const name of names) {
      if (++seen > MAX_ENTRIES)
        throw new LenscapError(
          STATE_ERRORS.tooLarge,
          `state dir ${paths.root} holds more than ${MAX_ENTRIES} entries; it is not a lenscap state dir`,
          { path: paths.root },
        );
      const p = join(dir, name);
      const st = lstatOrUndefined(p);
      if (!st) continue; // removed while we looked (a staging file): nothing to trust
      checkEntry(p, st, uid);
      if (!st.isDirectory() && !st.isFile())
        throw new LenscapError(STATE_ERRORS.notRegular, `${p} is neither a regular file nor a directory`, {
          path: p,
        });
      if (st.isDirectory()) {
        if (depth >= MAX_DEPTH)
          throw new LenscapError(STATE_ERRORS.tooLarge, `${p} is nested too deep for a state dir`, {
            path: p,
          });
        walk(p, depth + 1);
      }
    }
  };
  walk(paths.root, 1);
}
