/**
 * Certificate renewal against the real dev service (mTLS with the current cert): a cert near
 * expiry is replaced by a new one with a fresh key; the old cert keeps working (on disk and on a
 * live broker connection) until the swap; a power cut at any renewal step leaves a working
 * identity; a failed renewal leaves the old identity untouched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { systemClock } from '../../agent/clock.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { checkIdentity } from '../../agent/identity/check.ts';
import type { InstallStep } from '../../agent/identity/install.ts';
import { loadIdentity } from '../../agent/identity/load.ts';
import { provisionDevice } from '../../agent/identity/provision.ts';
import { createRenewer } from '../../agent/identity/renew.ts';
import { silentLogger } from '../../agent/log.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { startDevCloudIdentity, type StartedDevCloudIdentity } from '../../scripts/dev-cloud/server.ts';
import { startMosquitto } from '../../harness/mosquitto.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const tmp = makeTempDir('lenscap-renew-');
let cloud: StartedDevCloudIdentity;
const config = configSchema.parse({});
// The dev CA and the renewer share one clock; the power-cut test moves it on instead of sleeping.
let aheadMs = 0;
const clock = { ...systemClock, now: () => Date.now() + aheadMs };

before(async () => {
  // Provisioned certs live 10 days (renewal due: default threshold 30 days); renewed ones 365.
  cloud = await startDevCloudIdentity({
    devDir: join(tmp.dir, 'dev'),
    clock,
    certOptions: (kind) => ({ days: kind === 'provision' ? 10 : 365 }),
  });
});
after(async () => {
  await cloud?.close();
  tmp.cleanup();
});

async function provisioned(serial: string) {
  const stateDir = join(tmp.dir, serial);
  await provisionDevice({
    serial,
    url: cloud.provisioningUrl,
    token: await cloud.createToken(serial),
    caPem: cloud.caPem,
    stateDir,
    clock: systemClock,
    out: () => {},
  });
  return stateLayout(stateDir);
}

test('not due: a certificate with more than renewWhenRemainingDays left is kept', async () => {
  const paths = await provisioned('CAM-R0');
  const renewer = createRenewer({
    paths,
    serial: 'CAM-R0',
    config: configSchema.parse({ identity: { renewWhenRemainingDays: 5 } }),
    clock: systemClock,
    logger: silentLogger(),
    events: new MemoryEventSink(),
  });
  const r = await renewer.checkNow();
  assert.equal(r.renewed, false);
  assert.equal(r.reason, 'not_due');
});

test(
  'near expiry: renewed over mTLS with a fresh key; the old cert works until the swap and its live connection survives',
  needs('mosquitto'),
  async () => {
    const paths = await provisioned('CAM-R1');
    const old = loadIdentity({ paths, expectedSerial: 'CAM-R1', clock: systemClock });
    const mq = await startMosquitto({
      dir: join(tmp.dir, 'mq'),
      caPem: cloud.deviceCaPem,
      serverCert: cloud.brokerTls.cert,
      serverKey: cloud.brokerTls.key,
    });
    try {
      const live = await mqtt.connectAsync(mq.url, {
        key: old.keyPem,
        cert: old.certPem,
        ca: old.brokerCaPem,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        protocolVersion: 5,
      });
      const events = new MemoryEventSink();
      const onDisk: Record<string, string> = {};
      const renewer = createRenewer({
        paths,
        serial: 'CAM-R1',
        config,
        clock: systemClock,
        logger: silentLogger(),
        events,
        // Until the swap, the files on disk are still the old, complete identity.
        onInstallStep: (s: InstallStep) => {
          if (s === 'staged' || s === 'committed')
            onDisk[s] = checkIdentity({ paths, clock: systemClock }).fingerprint256;
        },
      });
      const t0 = performance.now();
      const r = await renewer.checkNow();
      console.log(`# renewal took ${(performance.now() - t0).toFixed(0)} ms (keygen + mTLS + verify + swap)`);
      assert.equal(r.renewed, true);
      assert.deepEqual(onDisk, { staged: old.fingerprint256, committed: old.fingerprint256 });
      const now = checkIdentity({ paths, expectedSerial: 'CAM-R1', clock: systemClock });
      assert.notEqual(now.fingerprint256, old.fingerprint256);
      assert.notEqual(now.keyPem, old.keyPem, 'fresh key');
      assert.ok(now.notAfter.getTime() - Date.now() > 300 * 86_400_000);
      assert.equal(events.events.length, 1);
      assert.equal(events.events[0]!.type, 'identity_renewed');
      assert.equal(events.events[0]!.serial, 'CAM-R1');
      assert.ok(!JSON.stringify(events.events[0]).includes('PRIVATE'));

      // The connection made with the old cert is still up; the new cert authenticates too.
      await live.publishAsync('lenscap/v1/CAM-R1/state', 'still-up', { qos: 1 });
      const fresh = await mqtt.connectAsync(mq.url, {
        key: now.keyPem,
        cert: now.certPem,
        ca: now.brokerCaPem,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        protocolVersion: 5,
      });
      await fresh.endAsync();
      await live.endAsync();
      assert.ok(mq.usernames().filter((u) => u === 'CAM-R1').length >= 2);

      // Renewed: the next check is not due.
      assert.equal((await renewer.checkNow()).reason, 'not_due');
    } finally {
      await mq.stop();
    }
  },
);

test('start() checks at once and renews when due; stop() ends the timer', async () => {
  const paths = await provisioned('CAM-R4');
  const events = new MemoryEventSink();
  const renewer = loadIdentity({ paths, clock: systemClock }).createRenewer({
    config,
    clock: systemClock,
    logger: silentLogger(),
    events,
  });
  const renewed = events.next();
  renewer.start();
  await renewed;
  renewer.stop();
  assert.equal(events.events[0]!.type, 'identity_renewed');
  assert.ok(checkIdentity({ paths, clock: systemClock }).notAfter.getTime() - Date.now() > 300 * 86_400_000);
});

test('power cut at every renewal step leaves a working identity (old before the commit, new after)', async () => {
  const steps: InstallStep[] = [
    'staged',
    'committed',
    'moved:identity/device.key',
    'moved:identity/device.crt',
    'moved:identity/chain.pem',
    'cleaned',
  ];
  const paths = await provisioned('CAM-R2');
  for (const cutAt of steps) {
    // X.509 validity has one-second resolution and a renewal must outlive the current cert: two
    // renewals within one second would be (rightly) refused as not newer, so the shared clock
    // (the dev CA's and the renewer's) moves on 1.1 s between steps.
    aheadMs += 1100;
    const before = checkIdentity({ paths, clock });
    const renewer = createRenewer({
      paths,
      serial: 'CAM-R2',
      config: configSchema.parse({ identity: { renewWhenRemainingDays: 400 } }), // always due
      clock,
      logger: silentLogger(),
      events: new MemoryEventSink(),
      onInstallStep: (s) => {
        if (s === cutAt) throw Object.assign(new Error('power cut'), { code: 'TEST_POWER_CUT' });
      },
    });
    await assert.rejects(renewer.checkNow(), { code: 'TEST_POWER_CUT' });
    const afterBoot = loadIdentity({ paths, expectedSerial: 'CAM-R2', clock });
    if (cutAt === 'staged') assert.equal(afterBoot.fingerprint256, before.fingerprint256, cutAt);
    else assert.notEqual(afterBoot.fingerprint256, before.fingerprint256, cutAt);
  }
});

test('a failed renewal (service down) keeps the current identity and reports a code', async () => {
  const paths = await provisioned('CAM-R3');
  const before = readFileSync(paths.deviceCert, 'utf8');
  const down = await startDevCloudIdentity({ devDir: join(tmp.dir, 'dev') }); // same dev dir, other port
  const renewUrl = `${down.provisioningUrl}/v1/renew`;
  await down.close();
  const r2 = createRenewer({
    paths,
    serial: 'CAM-R3',
    config: configSchema.parse({ identity: { renewUrl } }),
    clock: systemClock,
    logger: silentLogger(),
    events: new MemoryEventSink(),
  });
  await assert.rejects(r2.checkNow(), { code: 'ERR_PROVISION_UNREACHABLE' });
  assert.equal(readFileSync(paths.deviceCert, 'utf8'), before);
  checkIdentity({ paths, expectedSerial: 'CAM-R3', clock: systemClock });
});
