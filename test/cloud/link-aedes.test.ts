/**
 * The cloud link against the embedded aedes broker (in-process, MQTT 3.1.1 only) behind a real TLS
 * server demanding a device-CA client certificate: the happy path the dev cloud's default runs, and
 * a refused identity that must stop with a coded error and slow retries.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../agent/log.ts';
import { startAedesBroker, type RunningBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { registerCoreCommands } from '../../agent/cloud/core-commands.ts';
import { systemClock } from '../../agent/clock.ts';
import type { LenscapError } from '../../agent/errors.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { collect, makeLink, makePki, rawClient, testConfig, waitFor, writeState } from './fixture.ts';
import { onceWithin } from '../../harness/wait.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { createRequire } from 'node:module';

test('cloud link over aedes (MQTT 3.1.1, mTLS)', { timeout: 30_000 }, async (t) => {
  const tmp = makeTempDir('lenscap-aedes-');
  const pki = makePki();
  const broker: RunningBroker = await startAedesBroker({
    tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
  });
  const cfg = testConfig(broker.url, { protocolVersion: 4 });
  const a = makeLink({ serial: 'CAM-A', paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'), config: cfg });
  registerCoreCommands(a.registry, {
    clock: systemClock,
    acceptBinding: () => ({ version: 1 }),
    acceptTrustBundle: () => ({ version: 1 }),
    setPrivacy: () => undefined,
    sendTelemetry: async () => ({ sent: await a.link.publishTelemetry({ cpu: 0.5 }) }),
  });
  const cloud = await rawClient(broker.url, pki.cloud, pki.ca.cert, {
    clientId: 'lenscap-cloud-aedes',
    protocolVersion: 4,
  });
  t.after(async () => {
    await a.link.stop().catch(() => undefined);
    a.queue.close();
    cloud.end(true);
    await broker.close();
    tmp.cleanup();
  });
  const seen = collect(cloud);
  await cloud.subscribeAsync(
    ['lenscap/v1/+/state', 'lenscap/v1/+/events', 'lenscap/v1/+/reply/+', 'lenscap/v1/+/telemetry'],
    { qos: 1 },
  );

  a.queue.emit({
    type: 'grant_refused',
    at: new Date().toISOString(),
    serial: 'CAM-A',
    reason: 'wrong_audience',
    claimedAud: 'CAM-B',
  });
  a.link.start();
  await a.link.waitOnline(5000);
  // The broker registers the client on its own tick after CONNACK: wait, bounded, for it.
  await waitFor(() => broker.connected().includes('CAM-A'), 5000, 'aedes to list CAM-A');
  // Idle memory (issue 18): the link turns off mqtt-packet's number cache (65,536 Buffers, ~6 MB
  // of heap); the switch is module-wide in the mqtt-packet that mqtt.js resolves.
  const mqttRequire = createRequire(createRequire(import.meta.url).resolve('mqtt'));
  const { writeToStream } = mqttRequire('mqtt-packet') as { writeToStream: { cacheNumbers: boolean } };
  assert.equal(writeToStream.cacheNumbers, false, 'mqtt-packet number cache must be off');

  const st = await seen.until(() => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/state'));
  assert.equal(JSON.parse(st.payload).online, true);
  const ev = await seen.until(
    () => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/events'),
    5000,
    'queued event',
  );
  assert.equal(JSON.parse(ev.payload).claimedAud, 'CAM-B');

  cloud.publish('lenscap/v1/CAM-A/cmd/ping', JSON.stringify({ id: 'p1' }), { qos: 1 });
  const reply = await seen.until(() => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/reply/ping'));
  assert.equal(JSON.parse(reply.payload).status, 'ok');
  cloud.publish('lenscap/v1/CAM-A/cmd/telemetry', JSON.stringify({ id: 't1' }), { qos: 1 });
  await seen.until(() => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/telemetry'));
  cloud.publish('lenscap/v1/CAM-A/cmd/privacy', '{"id":', { qos: 1 });
  const bad = await seen.until(() => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/reply/privacy'));
  assert.equal(JSON.parse(bad.payload).error.code, 'ERR_COMMAND_BAD_JSON');

  await a.link.stop();
  const off = await seen.until(() =>
    seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/state' && JSON.parse(m.payload).online === false),
  );
  assert.deepEqual(JSON.parse(off.payload), { online: false });
  assert.equal(a.queue.size, 0);
});

test(
  'aedes refuses an identity (cert CN ≠ client id): coded error, slow retry, no hammering',
  { timeout: 30_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-aedes-');
    const pki = makePki();
    const broker = await startAedesBroker({
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
    });
    // The backoff runs on the test clock: the retry pace is checked by moving it, not by sleeping.
    const clock = new TestClock();
    // The state dir holds CAM-X's certificate but the link claims to be CAM-Y.
    const x = makeLink({
      serial: 'CAM-Y',
      paths: writeState(`${tmp.dir}/x`, pki, 'CAM-X'),
      config: testConfig(broker.url, { protocolVersion: 4 }),
      clock,
    });
    t.after(async () => {
      const stopping = x.link.stop();
      await clock.advance(5_000); // the stop grace, should the client not close by itself
      await stopping;
      x.queue.close();
      await broker.close();
      tmp.cleanup();
    });
    const refused = onceWithin<LenscapError>(x.link, 'refused', 15_000, "the link's 'refused'");
    x.link.start();
    await clock.advance(0); // the initial delay (initialDelayMaxMs 0)
    const err = await refused;
    assert.equal(err.code, 'ERR_CLOUD_NOT_AUTHORIZED');
    const d = x.link.lastDecision();
    assert.equal(d?.reason, 'not_authorized');
    const delayMs = d?.delayMs ?? 0;
    assert.ok(delayMs >= 450_000, `retry in ${delayMs} ms`);
    // Up to one millisecond before the decided delay: one attempt, then quiet.
    await clock.advance(delayMs - 1);
    assert.equal(x.link.counters().failedAttempts, 1, 'one attempt, then quiet');
    // At the decided delay, and not before, the link tries again.
    await clock.advance(1);
    await waitFor(() => x.link.counters().failedAttempts === 2, 10_000, 'the second attempt');
    assert.ok((x.link.lastDecision()?.delayMs ?? 0) >= 450_000, 'still slow after the second refusal');
  },
);

test(
  'TLS: only the broker CA from the state dir is trusted, and the server name is checked',
  { timeout: 30_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-aedes-');
    const pki = makePki();
    const rogue = makePki();
    // A broker whose certificate comes from another CA (it still accepts our device CA's clients).
    const evil = await startAedesBroker({
      tls: { key: rogue.broker.key, cert: rogue.broker.cert, ca: pki.ca.cert },
    });
    const good = await startAedesBroker({
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
    });
    const paths = writeState(`${tmp.dir}/a`, pki, 'CAM-A');
    const toEvil = makeLink({ serial: 'CAM-A', paths, config: testConfig(evil.url, { protocolVersion: 4 }) });
    const wrongName = makeLink({
      serial: 'CAM-A',
      paths: writeState(`${tmp.dir}/b`, pki, 'CAM-A'),
      config: testConfig(good.url, { protocolVersion: 4, servername: 'broker.other.example' }),
    });
    t.after(async () => {
      for (const l of [toEvil, wrongName]) {
        await l.link.stop();
        l.queue.close();
      }
      await evil.close();
      await good.close();
      tmp.cleanup();
    });
    toEvil.link.start();
    wrongName.link.start();
    // Refused during the TLS handshake: wait (bounded) for each first attempt to fail.
    for (const l of [toEvil, wrongName])
      await waitFor(() => l.link.counters().failedAttempts >= 1, 10_000, 'the first attempt to fail');
    for (const l of [toEvil, wrongName]) {
      assert.equal(l.link.isOnline(), false);
      assert.equal(l.link.counters().connects, 0);
      assert.ok(l.link.counters().failedAttempts >= 1);
    }
    assert.deepEqual(evil.connected(), []);
  },
);

/** A real pino logger whose JSON lines the test reads back. */
function capturedLogger() {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}
const WARN = 40;

test(
  'MQTT 5 (the default) against aedes (3.1.1 only): falls back to 3.1.1 once, says so at warn, connects',
  { timeout: 30_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-aedes-');
    const pki = makePki();
    const broker = await startAedesBroker({
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
    });
    const { lines, logger } = capturedLogger();
    const cfg = testConfig(broker.url); // protocolVersion 5, as the agent's default
    assert.equal(cfg.cloud.protocolVersion, 5);
    const a = makeLink({
      serial: 'CAM-A',
      paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'),
      config: cfg,
      logger,
    });
    t.after(async () => {
      await a.link.stop().catch(() => undefined);
      a.queue.close();
      await broker.close();
      tmp.cleanup();
    });
    a.link.start();
    await a.link.waitOnline(10_000);
    await waitFor(() => broker.connected().includes('CAM-A'), 5000, 'aedes to list CAM-A');
    const fallbacks = lines.filter((l) => /falling back to MQTT 3\.1\.1/.test(l.msg));
    assert.equal(fallbacks.length, 1, JSON.stringify(lines, null, 1));
    assert.equal(fallbacks[0]!.level, WARN);
    assert.match(String(fallbacks[0]!.reason), /unsupported protocol version/);
    assert.equal(a.link.counters().failedAttempts, 1, 'one refused MQTT 5 attempt, then online');
    assert.equal(a.link.counters().connects, 1);
  },
);

test(
  'repeated connect failures are logged at warn with a readable reason',
  { timeout: 30_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-aedes-');
    const pki = makePki();
    // A port that was just free: nothing listens, every attempt is refused by the kernel.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { lines, logger } = capturedLogger();
    const a = makeLink({
      serial: 'CAM-A',
      paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'),
      config: testConfig(`mqtts://127.0.0.1:${port}`),
      logger,
    });
    t.after(async () => {
      await a.link.stop();
      a.queue.close();
      tmp.cleanup();
    });
    a.link.start();
    await waitFor(() => a.link.counters().failedAttempts >= 3, 10_000, 'three failed attempts');
    const failed = lines.filter((l) => l.msg === 'cloud link: connect attempt failed');
    assert.ok(failed.length >= 3);
    assert.ok(failed[0]!.level < WARN, 'a single failure is not yet worth a warning');
    for (const l of failed.slice(1)) {
      assert.equal(l.level, WARN);
      assert.match(String(l.reason), /^network: .*ECONNREFUSED/);
    }
  },
);
