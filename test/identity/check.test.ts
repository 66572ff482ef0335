/**
 * The agent's start checks on real files: one test per refusal code, plus the happy path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock, systemClock } from '../../agent/clock.ts';
import { checkIdentity } from '../../agent/identity/check.ts';
import { loadIdentity } from '../../agent/identity/load.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { writeIdentity } from './fixture.ts';

const ca = DevCa.create('check test device CA');
const good = ca.issueClient('CAM-0001');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return 'no error';
}

test('a valid identity passes; the serial is the CN', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const paths = writeIdentity(tmp.dir, ca, good);
  const id = checkIdentity({ paths, clock: systemClock });
  assert.equal(id.serial, 'CAM-0001');
  assert.ok(id.notAfter.getTime() > Date.now());
  const loaded = loadIdentity({ paths, expectedSerial: 'CAM-0001', clock: systemClock });
  assert.equal(loaded.serial, 'CAM-0001');
  assert.equal(loaded.recovered, 'none');
  assert.equal(typeof loaded.createRenewer, 'function');
});

test('ERR_IDENTITY_MISSING when not provisioned', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  assert.equal(
    code(() => checkIdentity({ paths: stateLayout(tmp.dir), clock: systemClock })),
    'ERR_IDENTITY_MISSING',
  );
  const paths = writeIdentity(tmp.dir, ca, good);
  rmSync(paths.deviceCert);
  assert.equal(
    code(() => checkIdentity({ paths, clock: systemClock })),
    'ERR_IDENTITY_MISSING',
  );
});

test('ERR_IDENTITY_KEY_PERMISSIONS: key readable by group/others, or its directory open', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const paths = writeIdentity(tmp.dir, ca, good);
  for (const mode of [0o640, 0o604, 0o644]) {
    chmodSync(paths.deviceKey, mode);
    assert.equal(
      code(() => checkIdentity({ paths, clock: systemClock })),
      'ERR_IDENTITY_KEY_PERMISSIONS',
      `key 0${mode.toString(8)}`,
    );
  }
  chmodSync(paths.deviceKey, 0o400);
  assert.equal(
    code(() => checkIdentity({ paths, clock: systemClock })),
    'no error',
    'key 0400 is fine',
  );
  chmodSync(paths.identityDir, 0o755);
  assert.equal(
    code(() => checkIdentity({ paths, clock: systemClock })),
    'ERR_IDENTITY_KEY_PERMISSIONS',
    'dir 0755',
  );
  chmodSync(paths.identityDir, 0o710);
  assert.equal(
    code(() => checkIdentity({ paths, clock: systemClock })),
    'ERR_IDENTITY_KEY_PERMISSIONS',
    'dir 0710',
  );
});

test('ERR_IDENTITY_KEY_MISMATCH: key of another certificate', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const other = ca.issueClient('CAM-0001');
  const paths = writeIdentity(tmp.dir, ca, { key: other.key, cert: good.cert });
  assert.equal(
    code(() => checkIdentity({ paths, clock: systemClock })),
    'ERR_IDENTITY_KEY_MISMATCH',
  );
});

test('ERR_IDENTITY_CERT_EXPIRED and ERR_IDENTITY_CERT_NOT_YET_VALID against the injected clock', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const paths = writeIdentity(tmp.dir, ca, good);
  const id = checkIdentity({ paths, clock: systemClock });
  assert.equal(
    code(() => checkIdentity({ paths, clock: new ManualClock(id.notAfter.getTime() + 1000) })),
    'ERR_IDENTITY_CERT_EXPIRED',
  );
  assert.equal(
    code(() => checkIdentity({ paths, clock: new ManualClock(id.notBefore.getTime() - 1000) })),
    'ERR_IDENTITY_CERT_NOT_YET_VALID',
  );
  // And a certificate that really is expired by the system clock.
  const old = ca.issueClient('CAM-0001', { notBefore: new Date(Date.now() - 10 * 86_400_000), days: 2 });
  const paths2 = writeIdentity(tmp.dir + '/b', ca, old);
  assert.equal(
    code(() => checkIdentity({ paths: paths2, clock: systemClock })),
    'ERR_IDENTITY_CERT_EXPIRED',
  );
});

test('ERR_IDENTITY_UNTRUSTED_CA: certificate from a foreign CA (same CA name)', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const foreign = DevCa.create('check test device CA');
  const paths = writeIdentity(tmp.dir, ca, foreign.issueClient('CAM-0001'));
  assert.equal(
    code(() => checkIdentity({ paths, clock: systemClock })),
    'ERR_IDENTITY_UNTRUSTED_CA',
  );
  // A self-signed "device CA" swapped in for the pinned one is still only what the file says:
  // pinning means the file; tampering with it is outside what a start check can detect.
  writeFileSync(paths.deviceCa, 'garbage');
  assert.equal(
    code(() => checkIdentity({ paths, clock: systemClock })),
    'ERR_IDENTITY_INVALID',
  );
});

test('ERR_IDENTITY_SERIAL_MISMATCH: configured serial differs from the CN', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const paths = writeIdentity(tmp.dir, ca, good);
  assert.equal(
    code(() => checkIdentity({ paths, expectedSerial: 'CAM-0002', clock: systemClock })),
    'ERR_IDENTITY_SERIAL_MISMATCH',
  );
  assert.equal(
    code(() => checkIdentity({ paths, expectedSerial: 'CAM-0001', clock: systemClock })),
    'no error',
  );
});

test('the whole state tree is checked at start: open modes, symlinks, foreign owners, non-regular files', (t) => {
  const start = (paths: ReturnType<typeof stateLayout>) =>
    code(() => loadIdentity({ paths, expectedSerial: 'CAM-0001', clock: systemClock }));
  const fresh = () => {
    const tmp = makeTempDir();
    t.after(tmp.cleanup);
    const paths = writeIdentity(tmp.dir, ca, good);
    for (const d of [paths.trustDir, paths.auditDir, paths.eventsDir, paths.grantsDir])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    writeFileSync(paths.trustBundle, 'x.y.z', { mode: 0o644 });
    writeFileSync(paths.auditLog, '', { mode: 0o600 });
    writeFileSync(paths.eventQueue, '', { mode: 0o600 });
    return { paths, dir: tmp.dir };
  };
  const named = (paths: ReturnType<typeof stateLayout>, path: string) => {
    try {
      loadIdentity({ paths, expectedSerial: 'CAM-0001', clock: systemClock });
    } catch (err) {
      return (err as { detail?: { path?: string } }).detail?.path === path;
    }
    return false;
  };

  // Control: a tidy tree starts.
  assert.equal(start(fresh().paths), 'no error');

  // A world-writable state dir (the attack: another user swaps trust/).
  let f = fresh();
  chmodSync(f.paths.root, 0o777);
  assert.equal(start(f.paths), 'ERR_STATE_PERMISSIONS');
  assert.ok(named(f.paths, f.paths.root), 'the error names the state dir');
  // Group-writable trust dir, bundle, audit log, event queue.
  for (const [p, mode] of [
    ['trustDir', 0o770],
    ['trustBundle', 0o664],
    ['auditLog', 0o622],
    ['eventQueue', 0o606],
  ] as const) {
    f = fresh();
    chmodSync(f.paths[p], mode);
    assert.equal(start(f.paths), 'ERR_STATE_PERMISSIONS', p);
    assert.ok(named(f.paths, f.paths[p]), `the error names ${p}`);
  }
  // trust/ swapped for a symlink to a directory someone else controls.
  f = fresh();
  const elsewhere = join(f.dir, '..', `${f.dir.split('/').pop()}-evil`);
  mkdirSync(elsewhere, { mode: 0o700 });
  t.after(() => rmSync(elsewhere, { recursive: true, force: true }));
  rmSync(f.paths.trustDir, { recursive: true });
  symlinkSync(elsewhere, f.paths.trustDir);
  assert.equal(start(f.paths), 'ERR_STATE_SYMLINK');
  assert.ok(named(f.paths, f.paths.trustDir));
  // The audit log opened through a symlink; a symlink anywhere else in the tree.
  f = fresh();
  rmSync(f.paths.auditLog);
  symlinkSync(join(elsewhere, 'log'), f.paths.auditLog);
  assert.equal(start(f.paths), 'ERR_STATE_SYMLINK');
  f = fresh();
  symlinkSync('/etc/passwd', join(f.paths.grantsDir, 'whatever'));
  assert.equal(start(f.paths), 'ERR_STATE_SYMLINK');
  // A directory (or FIFO) where a trust file must be.
  f = fresh();
  rmSync(f.paths.trustBundle);
  mkdirSync(f.paths.trustBundle, { mode: 0o700 });
  assert.equal(start(f.paths), 'ERR_STATE_NOT_REGULAR');
  // Owned by another user (only checkable as root: chown needs it).
  if (process.geteuid?.() === 0) {
    f = fresh();
    chownSync(f.paths.trustBundle, 4242, 4242);
    assert.equal(start(f.paths), 'ERR_STATE_OWNER');
    assert.ok(named(f.paths, f.paths.trustBundle));
  }
});
