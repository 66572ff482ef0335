/**
 * Issue 12, finding 2: an offline camera holds a queued `wrong_audience` alarm (the cloud's
 * misroute), then sixty seconds of junk from 10,100 source addresses arrive. On reconnect the alarm
 * must still be there; a valid grant in the middle of the flood is still accepted (the budget is on
 * recording, never on admission); and the agent's log stays under 1 MB for that minute. Real
 * signed grants, the real grant gate, the real on-disk event queue, the real pino logger (counted),
 * an injected clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createGrantGate } from '../../agent/grants/grant-gate.ts';
import { EventQueue } from '../../agent/audit/event-queue.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { createLogger } from '../../agent/log.ts';
import { makeGrantFixture, SERIAL } from '../../harness/grants-fixture.ts';
import { startAedesBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { collect, makeLink, makePki, rawClient, testConfig, waitFor, writeState } from '../cloud/fixture.ts';

const SOURCES = 10_100;
const FLOOD_MS = 60_000;

test(
  'a flood from 10,100 addresses neither evicts the queued misroute alarm nor floods the log',
  { timeout: 180_000 },
  async (t) => {
    const f = await makeGrantFixture();
    t.after(f.cleanup);
    let logBytes = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logBytes += chunk.length;
        cb();
      },
    });
    const logger = createLogger({ level: 'info', destination: sink, serial: SERIAL });
    const { config } = loadConfig(undefined, {});
    const queue = EventQueue.open({
      file: f.paths.eventQueue,
      serial: SERIAL,
      maxEvents: config.cloud.eventQueue.maxEvents,
      maxBytes: config.cloud.eventQueue.maxBytes,
      clock: f.clock,
      logger,
    });
    const gate = createGrantGate({
      serial: SERIAL,
      grants: config.grants,
      relayAllowList: [],
      paths: f.paths,
      clock: f.clock,
      logger,
      events: queue,
      isPrivacyOn: () => false,
    });

    // The camera is offline (nothing delivers). The cloud misroutes a grant meant for CAM-0002 here.
    const misrouted = await gate.decide(f.mint({ serial: 'CAM-0002', viewer: 'bob' }), {
      source: 'gate:192.0.2.7',
      purpose: 'view',
    });
    assert.equal(misrouted.ok ? 'accepted' : misrouted.reason, 'wrong_audience');
    assert.equal(queue.size, 1);

    // A forged signature: valid shape and header, someone else's signature bytes.
    const a = f.mint().split('.');
    const b = f.mint({ viewer: 'bob' }).split('.');
    const forged = `${a[0]}.${a[1]}.${b[2]}`;
    const start = f.clock.now();
    const total = SOURCES * 6;
    const logBefore = logBytes;
    let acceptedDuringFlood = 0;
    for (let i = 0; i < total; i++) {
      const n = i % SOURCES;
      const source = `gate:10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
      const kind = i % 3;
      const token = kind === 0 ? `junk.${i}.x` : kind === 1 ? undefined : forged;
      const d = await gate.decide(token, { source, purpose: 'view' });
      assert.equal(d.ok, false);
      if (i === total / 2) {
        // Mid-flood, with every recording budget long spent: a valid grant is decided as usual.
        const ok = await gate.decide(f.mint(), { source: 'gate:192.0.2.8', purpose: 'view' });
        if (ok.ok) acceptedDuringFlood++;
      }
      f.clock.set(start + Math.floor(((i + 1) * FLOOD_MS) / total));
    }
    const floodLogBytes = logBytes - logBefore;
    t.diagnostic(
      `flood: ${total} refusals from ${SOURCES} sources over ${FLOOD_MS / 1000} s → ${floodLogBytes} log bytes, ` +
        `${queue.size} events queued, ${queue.droppedSinceOpen} dropped`,
    );
    assert.equal(acceptedDuringFlood, 1, 'a valid grant is accepted in the middle of the flood');
    assert.equal(gate.counters.refused, total + 1, 'every refusal counted');
    assert.ok(floodLogBytes <= 1024 * 1024, `agent log ${floodLogBytes} bytes for one minute of flood`);

    // Shutdown flushes the counts; the camera restarts and reconnects: the real link over mTLS to
    // a real (aedes) broker, the cloud subscribed to the events topic.
    gate.close();
    queue.close();
    const pki = makePki();
    const broker = await startAedesBroker({
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
    });
    t.after(() => broker.close());
    const cam = makeLink({
      serial: SERIAL,
      paths: writeState(f.paths.root, pki, SERIAL),
      config: testConfig(broker.url, { protocolVersion: 4 }),
    });
    t.after(async () => {
      await cam.link.stop().catch(() => undefined);
      cam.queue.close();
    });
    const pending = cam.queue.size;
    assert.ok(pending > 0, 'the queue came back from disk');
    const cloud = await rawClient(broker.url, pki.cloud, pki.ca.cert, {
      clientId: 'lenscap-cloud-flood',
      protocolVersion: 4,
    });
    t.after(() => void cloud.end(true));
    const seen = collect(cloud);
    await cloud.subscribeAsync(`lenscap/v1/${SERIAL}/events`, { qos: 1 });
    cam.link.start();
    await cam.link.waitOnline(10_000);
    await seen.until(() => (seen.got.length >= pending ? true : undefined), 15_000, `${pending} events`);
    await waitFor(() => cam.queue.size === 0, 5000, 'queue drained');
    const delivered = seen.got.map((m) => JSON.parse(m.payload) as Record<string, unknown>);
    const alarm = delivered.find((e) => e.type === 'grant_refused' && e.reason === 'wrong_audience');
    assert.ok(alarm, 'the misroute alarm was delivered on reconnect');
    assert.equal(alarm.claimedAud, 'CAM-0002');
    assert.equal(alarm.sub, 'bob');
    // And not one count lost: recorded one by one + counted in summaries = every junk refusal.
    let counted = 0;
    for (const e of delivered) {
      if (e.type !== 'grant_refused' || e.reason === 'wrong_audience') continue;
      const data = e.data as { suppressed?: number } | undefined;
      counted += data?.suppressed ?? 1;
    }
    const dropped = delivered
      .filter((e) => e.type === 'events_dropped')
      .reduce((n, e) => n + ((e.data as { count: number }).count ?? 0), 0);
    assert.equal(dropped, 0, 'nothing had to be dropped');
    assert.equal(counted, total, 'every junk refusal is either recorded or counted in a summary');
  },
);

test('one leaked signed grant replayed 12,000 times neither evicts the misroute alarm nor floods the log', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  let logBytes = 0;
  const logger = createLogger({
    level: 'info',
    serial: SERIAL,
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        logBytes += chunk.length;
        cb();
      },
    }),
  });
  const { config } = loadConfig(undefined, {});
  const queue = EventQueue.open({
    file: f.paths.eventQueue,
    serial: SERIAL,
    ...config.cloud.eventQueue,
    clock: f.clock,
    logger,
  });
  const gate = createGrantGate({
    serial: SERIAL,
    grants: config.grants,
    relayAllowList: [],
    paths: f.paths,
    clock: f.clock,
    logger,
    events: queue,
    isPrivacyOn: () => false,
  });
  await gate.decide(f.mint({ serial: 'CAM-0002' }), { source: 'gate:192.0.2.7', purpose: 'view' });
  // A grant that was good once (signature holds), now expired: anyone who saw it can replay it.
  const leaked = f.mint({ now: f.clock.now() / 1000 - 400, ttlSeconds: 300 });
  // A second, different signed grant refused in the middle: recorded one by one as ever.
  const other = f.mint({ viewer: 'mallory' });
  const total = 12_000;
  const start = f.clock.now();
  for (let i = 0; i < total; i++) {
    const d = await gate.decide(leaked, { source: `gate:10.0.${i >> 8}.${i & 255}`, purpose: 'view' });
    assert.equal(d.ok ? 'accepted' : d.reason, 'expired');
    if (i === total / 2) await gate.decide(other, { source: 'gate:192.0.2.9', purpose: 'view' });
    f.clock.set(start + Math.floor(((i + 1) * 60_000) / total));
  }
  const minuteLog = logBytes;
  gate.close();
  const out: Array<Record<string, unknown>> = [];
  await queue.deliver(async (json) => void out.push(JSON.parse(json) as Record<string, unknown>));
  queue.close();
  t.diagnostic(
    `replay: ${total} refusals of one grant in 60 s → ${minuteLog} log bytes, ${out.length} events`,
  );
  assert.ok(
    out.some((e) => e.reason === 'wrong_audience' && e.claimedAud === 'CAM-0002'),
    'alarm kept',
  );
  assert.ok(
    out.some((e) => e.reason === 'viewer_not_bound'),
    'a distinct signed refusal is recorded',
  );
  assert.ok(minuteLog <= 1024 * 1024, `agent log ${minuteLog} bytes`);
  const replays = out.filter((e) => e.reason === 'expired');
  const counted = replays.reduce(
    (n, e) => n + ((e.data as { suppressed?: number } | undefined)?.suppressed ?? 1),
    0,
  );
  assert.equal(counted, total, 'every replay recorded or counted');
  assert.ok(
    replays.every((e) => e.jti !== undefined),
    'each record and summary names the replayed grant',
  );
  assert.equal(out.filter((e) => e.type === 'events_dropped').length, 0);
});
