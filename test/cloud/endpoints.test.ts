/**
 * Several broker endpoints: `cloud.url` as a list (or one name with several addresses), the rotation
 * that moves to the next endpoint after a failure, and the link doing so at the pace of the same
 * capped full-jitter backoff (delays recorded through injected timers and a fixed random).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { EndpointRotation, parseEndpoints } from '../../agent/cloud/endpoints.ts';
import { systemClock, type Time } from '../../agent/clock.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { startAedesBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import net from 'node:net';
import { makeTempDir } from '../../harness/tmp.ts';
import { makeLink, makePki, testConfig, waitFor, writeState } from './fixture.ts';

test('parseEndpoints: one URL or a list; bad entries get a coded error naming the index', () => {
  assert.deepEqual(parseEndpoints('mqtts://b.example'), [
    { host: 'b.example', port: 8883, url: 'mqtts://b.example' },
  ]);
  assert.deepEqual(
    parseEndpoints(['mqtts://a:1883', 'mqtts://[::1]:9']).map((e) => [e.host, e.port]),
    [
      ['a', 1883],
      ['::1', 9],
    ],
  );
  for (const bad of [[], ['mqtt://plain:1883'], ['mqtts://ok', 'nonsense']]) {
    assert.throws(
      () => parseEndpoints(bad),
      (e: unknown) => isLenscapError(e) && /^ERR_CLOUD_(URL|NO_URL)$/.test(e.code),
    );
  }
});

test('rotation: random start, moves on after a failure, wraps, addresses of a name in turn', () => {
  const eps = parseEndpoints(['mqtts://n1:1', 'mqtts://n2:2', 'mqtts://10.0.0.3:3']);
  const r = new EndpointRotation(eps, () => 0.5);
  assert.equal(r.current().url, 'mqtts://n2:2', 'start at floor(0.5·3) = 1');
  assert.equal(r.needsLookup(), true);
  r.learn(['10.1.0.1', '10.1.0.2']);
  assert.deepEqual(r.current(), {
    host: '10.1.0.1',
    port: 2,
    servername: 'n2',
    index: 1,
    url: 'mqtts://n2:2',
  });
  assert.equal(r.needsLookup(), true, 'a name is looked up again only when we arrive at it');
  r.advance();
  assert.equal(r.needsLookup(), false);
  assert.equal(r.current().host, '10.1.0.2');
  assert.equal(r.current().servername, 'n2', 'the certificate is checked against the name');
  r.advance();
  assert.deepEqual([r.current().host, r.current().servername], ['10.0.0.3', undefined]);
  assert.equal(r.needsLookup(), false, 'an IP literal is not looked up');
  r.advance();
  assert.equal(r.current().url, 'mqtts://n1:1', 'wraps around');
  // a failed lookup leaves the name itself as the target
  r.learn([]);
  assert.equal(r.current().host, 'n1');
  // random ≈ 1 stays in range; cloud.servername overrides every name
  const last = new EndpointRotation(eps, () => 0.9999999, 'broker.example');
  assert.equal(last.current().index, 2);
  assert.equal(last.current().servername, 'broker.example');
});

test('config: cloud.url takes a list, from the file or the environment; bad entries refused', () => {
  const one = configSchema.parse({ cloud: { url: 'mqtts://a:1' } });
  assert.equal(one.cloud.url, 'mqtts://a:1');
  const list = configSchema.parse({ cloud: { url: ['mqtts://a:1', 'mqtts://b:2'] } });
  assert.deepEqual(list.cloud.url, ['mqtts://a:1', 'mqtts://b:2']);
  const env = loadConfig(undefined, { LENSCAP_CLOUD_URL: 'mqtts://a:1,mqtts://b:2' });
  assert.deepEqual(env.config.cloud.url, ['mqtts://a:1', 'mqtts://b:2']);
  for (const url of [[], ['mqtts://a:1', 'mqtt://b:2'], 'mqtt://x', ['mqtts://a/path']]) {
    assert.equal(configSchema.safeParse({ cloud: { url } }).success, false, JSON.stringify(url));
  }
});

/** Timers that run at once but record every requested delay (the backoff's decisions). */
function recordingTimers() {
  const delays: number[] = [];
  const timers: Time = {
    ...systemClock,
    setTimeout: (fn, ms) => {
      delays.push(ms);
      return setTimeout(fn, 0);
    },
  };
  return { delays, timers };
}

test(
  'link: a list of endpoints, two dead — it moves on at the backoff pace and lands on the live one; a node loss moves it to another',
  { timeout: 30_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-endpoints-');
    const pki = makePki();
    const tls = { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert };
    const live1 = await startAedesBroker({ tls });
    const live2 = await startAedesBroker({ tls });
    // Dead nodes that hold their ports (a merely free port may be taken by another test meanwhile):
    // every connection is cut at once, before TLS.
    const deadServers: net.Server[] = [];
    const dead = async () => {
      const srv = net.createServer((sock) => sock.destroy());
      deadServers.push(srv);
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      return `mqtts://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
    };
    const dead1 = await dead();
    const dead2 = await dead();
    const rec = recordingTimers();
    const a = makeLink({
      serial: 'CAM-A',
      paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'),
      config: testConfig([dead1, dead2, live1.url, live2.url], {
        protocolVersion: 4,
        connectTimeoutMs: 20_000,
      }),
      // first draw: the starting endpoint (0 → the first); then every jitter draws 0.5
      random: (() => {
        let first = true;
        return () => (first ? ((first = false), 0) : 0.5);
      })(),
      clock: rec.timers,
    });
    t.after(async () => {
      await a.link.stop();
      a.queue.close();
      await live1.close().catch(() => undefined);
      await live2.close();
      for (const srv of deadServers) srv.close();
      tmp.cleanup();
    });
    a.link.start();
    await a.link.waitOnline(10_000);
    assert.equal(a.link.target()?.url, live1.url);
    assert.equal(a.link.counters().failedAttempts, 2, 'both dead endpoints tried once, in order');
    // aedes records the client just after it sends CONNACK: on a loaded machine the link can be
    // online a moment before the broker lists it.
    await waitFor(() => live1.connected().includes('CAM-A'), 5_000, 'aedes lists CAM-A');
    assert.deepEqual(live1.connected(), ['CAM-A']);
    // the decisions between attempts are the backoff's: initial, then attempts 1 and 2
    const decisions = a.link.lastDecision();
    assert.equal(decisions?.reason, 'backoff');
    assert.equal(decisions?.attempt, 2);
    // initial delay (initialDelayMaxMs 0), then full jitter at 0.5 of min(cap, base·2^n): 50, 100 ms
    assert.deepEqual(rec.delays, [0, 50, 100]);

    // The node holding the connection dies: the next attempt goes to the next endpoint, not back.
    await live1.close();
    await waitFor(() => a.link.isOnline() && a.link.target()?.url === live2.url, 10_000, 'failover');
    await waitFor(() => live2.connected().includes('CAM-A'), 5_000, 'aedes lists CAM-A');
    assert.deepEqual(live2.connected(), ['CAM-A']);
    assert.equal(a.link.counters().reconnects, 1);
    assert.equal(a.link.counters().failedAttempts, 2, 'no attempt wasted on the dead node');
  },
);

test(
  'link: one name with several addresses — each address in turn, the certificate checked against the name',
  { timeout: 30_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-endpoints-');
    const pki = makePki(); // broker certificate for "localhost"
    const broker = await startAedesBroker({
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
    });
    const rec = recordingTimers();
    const looked: string[] = [];
    const a = makeLink({
      serial: 'CAM-A',
      paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'),
      // 127.0.0.2 is loopback too but the broker listens on 127.0.0.1 only: a dead "node".
      config: testConfig(`mqtts://localhost:${broker.port}`, {
        protocolVersion: 4,
        connectTimeoutMs: 20_000,
      }),
      random: () => 0,
      clock: rec.timers,
      lookup: async (host) => {
        looked.push(host);
        return ['127.0.0.2', '127.0.0.1'];
      },
    });
    t.after(async () => {
      await a.link.stop();
      a.queue.close();
      await broker.close();
      tmp.cleanup();
    });
    a.link.start();
    await a.link.waitOnline(10_000);
    assert.deepEqual(looked, ['localhost'], 'resolved once for the round');
    assert.equal(a.link.counters().failedAttempts, 1);
    assert.deepEqual(a.link.target(), {
      host: '127.0.0.1',
      port: broker.port,
      servername: 'localhost',
      index: 0,
      url: `mqtts://localhost:${broker.port}`,
    });
  },
);

test(
  'link: a name whose addresses all carry the wrong certificate never connects (name checked, fails closed)',
  { timeout: 30_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-endpoints-');
    const pki = makePki();
    const broker = await startAedesBroker({
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
    });
    const a = makeLink({
      serial: 'CAM-A',
      paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'),
      // the name is not the one in the broker's certificate, even though it resolves to the broker
      config: testConfig(`mqtts://broker.other.example:${broker.port}`, { protocolVersion: 4 }),
      lookup: async () => ['127.0.0.1'],
    });
    t.after(async () => {
      await a.link.stop();
      a.queue.close();
      await broker.close();
      tmp.cleanup();
    });
    a.link.start();
    await waitFor(() => a.link.counters().failedAttempts >= 2, 10_000, 'two failed attempts');
    assert.equal(a.link.counters().connects, 0);
    assert.deepEqual(broker.connected(), []);
  },
);
