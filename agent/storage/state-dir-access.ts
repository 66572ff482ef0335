/**
 * The start-up check of the state dir, before anything reads or writes in it: it must be a
 * directory this process may read, write and enter, and so must everything inside it. The classic
 * field mistakes — provisioned as root, then run as the service user; a file where the directory
 * should be — become one coded error naming the path, its owner and the fix, instead of a raw
 * EACCES / EEXIST from deep inside a module.
 * Must never change ownership or permissions itself (the fix is a person's decision), and never
 * follow a symlink out of the state dir.
 */
import {
  accessSync,
  constants,
  lstatSync,
  type Stats,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { LenscapError } from '../errors.ts';

export const STATE_DIR_ERRORS = {
  /** This user may not read/write/enter the state dir or something in it. */
  access: 'ERR_STATE_DIR_ACCESS',
  /** Something that is not a directory sits where the state dir (or its parent) should be. */
  notDir: 'ERR_STATE_DIR_NOT_DIR',
} as const;

/** "uid 0 (root)" from /etc/passwd when it names the uid; the bare uid otherwise. */
export function ownerName(
  uid: number,
  passwd: () => string = () => readFileSync('/etc/passwd', 'utf8'),
): string {
  try {
    for (const line of passwd().split('\n')) {
      const [name, , id] = line.split(':');
      if (name && Number(id) === uid) return `uid ${uid} (${name})`;
    }
  } catch {
    /* no passwd file (containers): the number alone */
  }
  return `uid ${uid}`;
}

function me(): { uid: number; name: string } {
  const u = userInfo();
  return { uid: u.uid, name: u.username };
}

/** stat that reads "a file sits where a directory should be" (ENOTDIR) as "does not exist". */
function safeStat(p: string): Stats | undefined {
  try {
    return statSync(p, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function describePath(p: string): string {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st) return p;
  return `${p} (owner ${ownerName(st.uid)}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
}

function accessError(root: string, path: string): LenscapError {
  const who = me();
  return new LenscapError(
    STATE_DIR_ERRORS.access,
    `this agent runs as uid ${who.uid} (${who.name}) and may not use ${describePath(path)} in the state dir ${root}` +
      ` — was it provisioned as another user (e.g. root)? Fix: sudo chown -R ${who.name}: ${root}` +
      ` (or run \`lenscap provision\` as ${who.name})`,
    { path, uid: lstatSync(path, { throwIfNoEntry: false })?.uid, runningAs: who.uid },
  );
}

function notDirError(root: string, path: string): LenscapError {
  return new LenscapError(
    STATE_DIR_ERRORS.notDir,
    `${describePath(path)} is not a directory, but the state dir ${root} needs it to be one.` +
      ` Fix: move it away (sudo mv ${path} ${path}.bak) or point stateDir / --state-dir elsewhere`,
    { path },
  );
}

/**
 * Makes sure `root` is a usable state dir, creating it (0700) when it does not exist. Throws
 * ERR_STATE_DIR_NOT_DIR or ERR_STATE_DIR_ACCESS naming the path, its owner and the fix.
 */
export function ensureUsableStateDir(root: string): void {
  let st: Stats | undefined;
  try {
    st = safeStat(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw accessError(root, dirname(root));
    throw err;
  }
  if (!st) {
    // The nearest existing ancestor decides whether we may create it.
    let parent = dirname(root);
    while (!safeStat(parent) && dirname(parent) !== parent) parent = dirname(parent);
    if (!safeStat(parent)?.isDirectory()) throw notDirError(root, parent);
    try {
      mkdirSync(root, { recursive: true, mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') throw accessError(root, parent);
      if (code === 'EEXIST' || code === 'ENOTDIR') throw notDirError(root, parent);
      throw err;
    }
    return;
  }
  if (!st.isDirectory()) throw notDirError(root, root);
  checkTree(root, root);
}

function checkTree(root: string, dir: string): void {
  try {
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch {
    throw accessError(root, dir);
  }
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isSymbolicLink()) continue;
    if (ent.isDirectory()) checkTree(root, p);
    else {
      try {
        accessSync(p, constants.R_OK | constants.W_OK);
      } catch {
        throw accessError(root, p);
      }
    }
  }
}
