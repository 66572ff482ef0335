/**
 * Field provisioning end to end against the real dev provisioning service (HTTPS, one-time tokens,
 * real files), and the resulting identity against a real mosquitto (require_certificate +
 * use_identity_as_username): the broker sees the serial as the username. Then every refusal a
 * technician can meet, each by its code, and a power cut after every install step.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { ManualClock, systemClock } from '../../agent/clock.ts';
import { checkIdentity } from '../../agent/identity/check.ts';
import { loadIdentity } from '../../agent/identity/load.ts';
import { PENDING_FILE, provisionDevice, type ProvisionOptions } from '../../agent/identity/provision.ts';
import type { InstallStep } from '../../agent/identity/install.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { startDevCloudIdentity, type StartedDevCloudIdentity } from '../../scripts/dev-cloud/server.ts';
import { createToken } from '../../scripts/dev-cloud/tokens.ts';
import { startMosquitto, type TestMosquitto } from '../../harness/mosquitto.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const tmp = makeTempDir('lenscap-provision-');
let cloud: StartedDevCloudIdentity;
let n = 0;

before(async () => {
  cloud = await startDevCloudIdentity({ devDir: join(tmp.dir, 'dev') });
});
after(async () => {
  await cloud?.close();
  tmp.cleanup();
});

function opts(
  serial: string,
  token: string,
  extra: Partial<ProvisionOptions> = {},
): ProvisionOptions & { lines: string[] } {
  const lines: string[] = [];
  return {
    serial,
    token,
    url: cloud.provisioningUrl,
    caPem: cloud.caPem,
    stateDir: join(tmp.dir, `cam-${++n}`),
    clock: systemClock,
    out: (l) => lines.push(l),
    lines,
    ...extra,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return 'no error';
}

test(
  'provision end to end: verified identity installed with permissions; mosquitto sees the serial as the username',
  needs('mosquitto'),
  async () => {
    const o = opts('CAM-0001', await cloud.createToken('CAM-0001'));
    const t0 = performance.now();
    const r = await provisionDevice(o);
    const ms = performance.now() - t0;
    assert.equal(r.status, 'provisioned');
    assert.equal(r.serial, 'CAM-0001');
    const paths = stateLayout(o.stateDir);
    const id = checkIdentity({ paths, expectedSerial: 'CAM-0001', clock: systemClock });
    assert.equal(statSync(paths.deviceKey).mode & 0o777, 0o600);
    for (const d of [paths.root, paths.identityDir, paths.cloudDir, paths.trustDir])
      assert.equal(statSync(d).mode & 0o777, 0o700, d);
    assert.ok(JSON.parse(readFileSync(paths.trustRoot, 'utf8')).kid);
    assert.ok(readFileSync(paths.trustBundle, 'utf8').split('.').length === 3);
    // One line per step, numbered; the key never printed, the token never whole.
    // ...plus the label's claim code, printed once, kept 0600 on the camera (issue 14).
    const codeLines = o.lines.filter((l) => l.startsWith('claim code for the label'));
    assert.equal(codeLines.length, 1, o.lines.join('\n'));
    assert.match(codeLines[0]!, /: ([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/);
    assert.equal(r.claimCode, codeLines[0]!.split(': ').pop());
    assert.equal(statSync(paths.claimSecret).mode & 0o777, 0o600);
    const steps = o.lines.filter((l) => !codeLines.includes(l));
    assert.ok(steps.length >= 6 && steps.every((l) => /^\[\d\/7\] /.test(l)), o.lines.join('\n'));
    const printed = o.lines.join('\n');
    assert.ok(!printed.includes('PRIVATE KEY') && !printed.includes(o.token));
    console.log(
      `# provisioning CAM-0001 took ${ms.toFixed(0)} ms (RSA-2048 keygen + HTTPS + verify + install)`,
    );

    // Idempotent: a second run leaves the valid identity alone.
    const again = await provisionDevice({ ...o, token: 'spent-anyway', out: () => {} });
    assert.equal(again.status, 'already');
    assert.equal(checkIdentity({ paths, clock: systemClock }).fingerprint256, id.fingerprint256);

    const mq: TestMosquitto = await startMosquitto({
      dir: join(tmp.dir, 'mq'),
      caPem: cloud.deviceCaPem,
      serverCert: cloud.brokerTls.cert,
      serverKey: cloud.brokerTls.key,
      acl: 'pattern readwrite lenscap/v1/%u/#\n',
    });
    try {
      const c = await mqtt.connectAsync(mq.url, {
        key: id.keyPem,
        cert: id.certPem,
        ca: id.brokerCaPem,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        protocolVersion: 5,
        clientId: 'CAM-0001',
      });
      await c.publishAsync('lenscap/v1/CAM-0001/state', 'online', { qos: 1 });
      await mq.waitForLog(/u'CAM-0001'/);
      assert.ok(mq.usernames().includes('CAM-0001'));
      await c.endAsync();
    } finally {
      await mq.stop();
    }
  },
);

test('--force replaces a valid identity; a valid identity for another serial is refused without it', async () => {
  const o = opts('CAM-0010', await cloud.createToken('CAM-0010'));
  await provisionDevice(o);
  const paths = stateLayout(o.stateDir);
  const first = checkIdentity({ paths, clock: systemClock });
  assert.equal(
    await codeOf(provisionDevice({ ...o, serial: 'CAM-0011', token: await cloud.createToken('CAM-0011') })),
    'ERR_PROVISION_ALREADY',
  );
  assert.equal(checkIdentity({ paths, clock: systemClock }).fingerprint256, first.fingerprint256);
  const r = await provisionDevice({ ...o, token: await cloud.createToken('CAM-0010'), force: true });
  assert.equal(r.status, 'provisioned');
  assert.notEqual(
    checkIdentity({ paths, expectedSerial: 'CAM-0010', clock: systemClock }).fingerprint256,
    first.fingerprint256,
  );
});

test('token refusals: used, for another serial, unknown, expired', async () => {
  const token = await cloud.createToken('CAM-0002');
  await provisionDevice(opts('CAM-0002', token));
  // Used (by a different device key): refused.
  assert.equal(await codeOf(provisionDevice(opts('CAM-0002', token))), 'ERR_PROVISION_TOKEN_USED');
  assert.equal(
    await codeOf(provisionDevice(opts('CAM-0003', await cloud.createToken('CAM-0004')))),
    'ERR_PROVISION_SERIAL_NOT_ALLOWED',
  );
  assert.equal(
    await codeOf(provisionDevice(opts('CAM-0003', 'not-a-token-at-all'))),
    'ERR_PROVISION_TOKEN_INVALID',
  );
  const expired = await createToken(cloud.devDir, 'CAM-0003', 60, new ManualClock(Date.now() - 3_600_000));
  assert.equal(await codeOf(provisionDevice(opts('CAM-0003', expired))), 'ERR_PROVISION_TOKEN_EXPIRED');
});

test('network refusals: unknown CA (TLS), unreachable service, clock far off (then the same token finishes)', async () => {
  const foreign = DevCa.create('lenscap dev server CA');
  assert.equal(
    await codeOf(
      provisionDevice(opts('CAM-0005', await cloud.createToken('CAM-0005'), { caPem: foreign.certPem })),
    ),
    'ERR_PROVISION_TLS',
  );

  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  assert.equal(
    await codeOf(provisionDevice(opts('CAM-0005', 'x', { url: `https://127.0.0.1:${port}` }))),
    'ERR_PROVISION_UNREACHABLE',
  );

  const token = await cloud.createToken('CAM-0006');
  const o = opts('CAM-0006', token, { clock: new ManualClock(Date.now() + 2 * 3_600_000) });
  assert.equal(await codeOf(provisionDevice(o)), 'ERR_PROVISION_CLOCK_SKEW');
  // The technician fixes the clock and re-runs with the same token: the pending key is reused and
  // the service redeems the token again for that same key.
  const r = await provisionDevice({ ...o, clock: systemClock });
  assert.equal(r.status, 'provisioned');
  checkIdentity({ paths: stateLayout(o.stateDir), expectedSerial: 'CAM-0006', clock: systemClock });
});

test('camera clock far behind (service cert not yet valid by it): ERR_PROVISION_CLOCK_SKEW', async () => {
  const https = await import('node:https');
  const ca = DevCa.create('future server CA');
  const tls = ca.issueServer('future', { notBefore: new Date(Date.now() + 3 * 86_400_000) });
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (_req, res) => res.end('{}'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (server.address() as net.AddressInfo).port;
    assert.equal(
      await codeOf(
        provisionDevice(opts('CAM-0008', 'x', { url: `https://127.0.0.1:${port}`, caPem: ca.certPem })),
      ),
      'ERR_PROVISION_CLOCK_SKEW',
    );
  } finally {
    server.close();
  }
});

test(
  'full disk: ERR_PROVISION_DISK_FULL names the fix (ENOSPC from the filesystem)',
  { skip: process.getuid?.() !== 0 ? 'needs root to mount a tiny tmpfs' : undefined },
  async (t) => {
    const { execFileSync } = await import('node:child_process');
    const mnt = join(tmp.dir, 'tiny');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount tmpfs here');
      return;
    }
    try {
      // Fill the filesystem so the install cannot write.
      try {
        writeFileSync(join(mnt, 'filler'), Buffer.alloc(64 * 1024));
      } catch {
        /* full now */
      }
      const o = opts('CAM-0007', await cloud.createToken('CAM-0007'), { stateDir: join(mnt, 'state') });
      assert.equal(await codeOf(provisionDevice(o)), 'ERR_PROVISION_DISK_FULL');
    } finally {
      execFileSync('umount', [mnt]);
    }
  },
);

test('power cut after every install step: re-running with the same token finishes (or the agent recovers)', async () => {
  const all: InstallStep[] = [
    'staged',
    'committed',
    'moved:identity/device.key',
    'moved:identity/device.crt',
    'moved:identity/chain.pem',
    'moved:identity/device-ca.pem',
    'moved:identity/provisioning.json',
    'moved:cloud/broker-ca.pem',
    'moved:trust/root.jwk.json',
    'moved:trust/bundle.jws',
    'cleaned',
  ];
  for (const [i, cutAt] of all.entries()) {
    const serial = `CAM-CUT-${i}`;
    const token = await cloud.createToken(serial);
    const o = opts(serial, token, {
      onInstallStep: (s) => {
        if (s === cutAt) throw Object.assign(new Error(`power cut after ${s}`), { code: 'TEST_POWER_CUT' });
      },
    });
    assert.equal(await codeOf(provisionDevice(o)), 'TEST_POWER_CUT');
    const paths = stateLayout(o.stateDir);
    if (i % 2 === 0) {
      // The technician re-runs the same command.
      const r = await provisionDevice({ ...o, onInstallStep: undefined });
      assert.ok(r.status === 'provisioned' || r.status === 'already', cutAt);
    } else if (i >= 1) {
      // Or the camera boots straight into the agent: recovery finishes the committed install.
      const id = loadIdentity({ paths, expectedSerial: serial, clock: systemClock });
      assert.equal(id.serial, serial);
      await provisionDevice({ ...o, onInstallStep: undefined });
    }
    const id = checkIdentity({ paths, expectedSerial: serial, clock: systemClock });
    assert.equal(id.serial, serial, cutAt);
    assert.equal(statSync(paths.deviceKey).mode & 0o777, 0o600);
    assert.throws(() => statSync(join(paths.root, PENDING_FILE)), { code: 'ENOENT' });
  }
});
