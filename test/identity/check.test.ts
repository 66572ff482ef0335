/**
 * The agent's start checks on real files: one test per refusal code, plus the happy path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { ManualClock, systemClock } from '../../agent/clock.ts';
import { checkIdentity } from '../../agent/identity/check.ts';
import { loadIdentity } from '../../agent/identity/load.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { makeTempDir } from '../support/tmp.ts';
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
