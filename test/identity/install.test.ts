/**
 * Crash-safe install: a power cut (simulated by throwing from the step hook) after every step of
 * an identity swap leaves, after recovery, a complete identity that passes the start checks —
 * the old one before the commit point, the new one after it. Never a mix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../agent/clock.ts';
import { checkIdentity } from '../../agent/identity/check.ts';
import { installFiles, recoverInstall, STAGING_DIR, type InstallStep } from '../../agent/identity/install.ts';
import { loadIdentity } from '../../agent/identity/load.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { writeIdentity } from './fixture.ts';

const ca = DevCa.create('install test CA');
const oldPem = ca.issueClient('CAM-0001');
const newPem = ca.issueClient('CAM-0001');

class PowerCut extends Error {}

function swapFiles(paths: ReturnType<typeof writeIdentity>) {
  return [
    { path: paths.deviceKey, data: newPem.key, mode: 0o600 },
    { path: paths.deviceCert, data: newPem.cert, mode: 0o644 },
    { path: paths.chain, data: '', mode: 0o644 },
  ];
}

test('a full install swaps the files and leaves no staging behind; the key stays 0600', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const paths = writeIdentity(tmp.dir, ca, oldPem);
  const steps: InstallStep[] = [];
  installFiles({ stateDir: tmp.dir, files: swapFiles(paths), onStep: (s) => steps.push(s) });
  assert.deepEqual(steps, [
    'staged',
    'committed',
    'moved:identity/device.key',
    'moved:identity/device.crt',
    'moved:identity/chain.pem',
    'cleaned',
  ]);
  assert.equal(readFileSync(paths.deviceCert, 'utf8'), newPem.cert);
  assert.equal(statSync(paths.deviceKey).mode & 0o777, 0o600);
  assert.equal(existsSync(join(tmp.dir, STAGING_DIR)), false);
  checkIdentity({ paths, clock: systemClock });
});

test('power cut after each install step: recovery leaves the old or the new identity, whole', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const all: InstallStep[] = [
    'staged',
    'committed',
    'moved:identity/device.key',
    'moved:identity/device.crt',
    'moved:identity/chain.pem',
    'cleaned',
  ];
  for (const [i, cutAt] of all.entries()) {
    const root = join(tmp.dir, `cut-${i}`);
    const paths = writeIdentity(root, ca, oldPem);
    assert.throws(
      () =>
        installFiles({
          stateDir: root,
          files: swapFiles(paths),
          onStep: (s) => {
            if (s === cutAt) throw new PowerCut(s);
          },
        }),
      PowerCut,
    );
    // Next boot: the agent's loader recovers, then checks.
    const id = loadIdentity({ paths, expectedSerial: 'CAM-0001', clock: systemClock });
    const expectNew = i >= 1; // the COMMIT manifest is the point of no return
    assert.equal(
      readFileSync(paths.deviceCert, 'utf8'),
      expectNew ? newPem.cert : oldPem.cert,
      `cut after ${cutAt}`,
    );
    assert.equal(
      readFileSync(paths.deviceKey, 'utf8'),
      expectNew ? newPem.key : oldPem.key,
      `cut after ${cutAt}`,
    );
    assert.equal(
      id.recovered,
      i === 0 ? 'discarded' : i === all.length - 1 ? 'none' : 'finished',
      `cut after ${cutAt}`,
    );
    assert.equal(existsSync(join(root, STAGING_DIR)), false);
    assert.equal(statSync(paths.deviceKey).mode & 0o777, 0o600);
  }
});

test('staging without COMMIT is discarded; a manifest pointing outside the state dir is refused', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const paths = writeIdentity(tmp.dir, ca, oldPem);
  const staging = join(tmp.dir, STAGING_DIR);
  mkdirSync(staging, { mode: 0o700 });
  writeFileSync(join(staging, '0.identity_device.key'), newPem.key.slice(0, 100));
  assert.equal(recoverInstall(tmp.dir), 'discarded');
  assert.equal(readFileSync(paths.deviceKey, 'utf8'), oldPem.key);

  mkdirSync(staging, { mode: 0o700 });
  writeFileSync(
    join(staging, 'COMMIT'),
    JSON.stringify({ files: [{ staged: 'x', target: '../../etc/evil', mode: 0o644 }] }),
  );
  assert.throws(() => recoverInstall(tmp.dir), { code: 'ERR_IDENTITY_INSTALL' });
});
