/**
 * The cloud link against a real mosquitto (mTLS, CN as username, the shipped per-serial ACL), all on
 * loopback: connect and retained state, commands round trip, malformed-command fuzz, ACL denial, last
 * will of a SIGKILLed agent, and reconnect after a broker restart with the queued events delivered.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { freePort, startMosquittoBroker } from '../../scripts/dev-cloud/broker-mosquitto.ts';
import type { RunningBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { registerCoreCommands } from '../../agent/cloud/core-commands.ts';
import { LenscapError } from '../../agent/errors.ts';
import { systemClock } from '../../agent/clock.ts';
import {
  collect,
  gatedTimers,
  makeLink,
  makePki,
  rawClient,
  testConfig,
  writeState,
  type TestLink,
} from './fixture.ts';
import { onceWithin, quietFor, waitUntil } from '../../harness/wait.ts';

const opt = { ...needs('mosquitto'), timeout: 60_000 };
const CLOUD_IDS = [
  'lenscap-cloud',
  'lenscap-cloud-late',
  'lenscap-cloud-acl',
  'lenscap-cloud-t2',
  'lenscap-cloud-stop',
];

test('cloud link over mosquitto (mTLS + ACL)', opt, async (t) => {
  const tmp = makeTempDir('lenscap-cloud-');
  const pki = makePki();
  const port = await freePort();
  const brokerDir = `${tmp.dir}/broker`;
  const startBroker = () =>
    startMosquittoBroker({
      dir: brokerDir,
      port,
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.certPem },
      // The client id is the certificate CN: each cloud-side client below has a certificate of its own.
      cloudIdentities: CLOUD_IDS,
    });
  let broker: RunningBroker = await startBroker();
  const url = broker.url;
  const clients: MqttClient[] = [];
  const links: TestLink[] = [];
  t.after(async () => {
    for (const l of links) await l.link.stop().catch(() => undefined);
    for (const l of links) l.queue.close();
    for (const c of clients) c.end(true);
    await broker.close();
    tmp.cleanup();
  });

  const cloud = await rawClient(url, pki.cloud, pki.ca.certPem, { clientId: 'lenscap-cloud-t1' });
  clients.push(cloud);
  const seen = collect(cloud);
  await cloud.subscribeAsync(
    ['lenscap/v1/+/state', 'lenscap/v1/+/events', 'lenscap/v1/+/reply/+', 'lenscap/v1/+/telemetry'],
    { qos: 1 },
  );

  const gate = gatedTimers();
  gate.open();
  const a = makeLink({
    serial: 'CAM-A',
    paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'),
    config: testConfig(url),
    clock: gate.timers,
    state: () => ({ gate: 'https://cam-a.local:8443' }),
  });
  links.push(a);
  const privacy: boolean[] = [];
  const bindings: string[] = [];
  registerCoreCommands(a.registry, {
    clock: systemClock,
    acceptBinding: (jws) => {
      if (jws.startsWith('bad'))
        throw new LenscapError('ERR_BINDING_INVALID', 'binding record signature does not verify');
      bindings.push(jws);
      return { version: 2 };
    },
    acceptTrustBundle: () => ({ version: 3 }),
    setPrivacy: (on) => void privacy.push(on),
    sendTelemetry: async () => {
      await a.link.publishTelemetry({ cpu: 1 });
      return { sent: true };
    },
  });
  a.link.start();
  await a.link.waitOnline(5000);

  const command = async (serial: string, op: string, body: Record<string, unknown>) => {
    cloud.publish(`lenscap/v1/${serial}/cmd/${op}`, JSON.stringify(body), { qos: 1 });
    const r = await seen.until(
      () =>
        seen.got.find(
          (m) => m.topic === `lenscap/v1/${serial}/reply/${op}` && JSON.parse(m.payload).id === body.id,
        ),
      5000,
      `reply ${op} ${body.id}`,
    );
    return JSON.parse(r.payload);
  };

  await t.test('connect: retained online state', async () => {
    const st = await seen.until(() => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/state'));
    const body = JSON.parse(st.payload);
    assert.equal(body.online, true);
    assert.equal(body.gate, 'https://cam-a.local:8443');
    // A late subscriber gets it as a retained message.
    const late = await rawClient(url, pki.device('lenscap-cloud-late'), pki.ca.certPem, {
      clientId: 'lenscap-cloud-late',
    });
    clients.push(late);
    const l = collect(late);
    await late.subscribeAsync('lenscap/v1/CAM-A/state', { qos: 1 });
    const r = await l.until(() => l.got[0]);
    assert.equal(r.retain, true);
    assert.equal(JSON.parse(r.payload).online, true);
    late.end(true);
  });

  await t.test('commands round trip: ping, binding, trust, privacy, telemetry, refusals', async () => {
    const ping = await command('CAM-A', 'ping', { id: 'p-1' });
    assert.equal(ping.status, 'ok');
    assert.equal(ping.data.pong, true);
    assert.deepEqual(await command('CAM-A', 'binding', { id: 'b-1', record: 'aaaa.bbbb.cccc' }), {
      id: 'b-1',
      status: 'ok',
      data: { version: 2 },
    });
    const bad = await command('CAM-A', 'binding', { id: 'b-2', record: 'badd.bbbb.cccc' });
    assert.equal(bad.status, 'error');
    assert.equal(bad.error.code, 'ERR_BINDING_INVALID');
    assert.equal((await command('CAM-A', 'trust', { id: 't-1', bundle: 'xxxx.yyyy.zzzz' })).status, 'ok');
    assert.deepEqual(await command('CAM-A', 'privacy', { id: 'v-1', enabled: true }), {
      id: 'v-1',
      status: 'ok',
      data: { enabled: true },
    });
    assert.deepEqual(privacy, [true]);
    const tel = await command('CAM-A', 'telemetry', { id: 'm-1' });
    assert.equal(tel.status, 'ok');
    await seen.until(() => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/telemetry'));
    const unknown = await command('CAM-A', 'selfdestruct', { id: 'u-1' });
    assert.equal(unknown.error.code, 'ERR_COMMAND_UNKNOWN_OP');
    const missing = await command('CAM-A', 'privacy', { id: 'v-2' });
    assert.equal(missing.error.code, 'ERR_COMMAND_INVALID');
    // A redelivered id does not act twice: it gets the first reply again.
    cloud.publish('lenscap/v1/CAM-A/cmd/privacy', JSON.stringify({ id: 'v-1', enabled: false }), { qos: 1 });
    await command('CAM-A', 'ping', { id: 'p-2' });
    assert.deepEqual(privacy, [true]);
    assert.deepEqual(bindings, ['aaaa.bbbb.cccc']);
    // Refusals are security events on `events`.
    const ev = await seen.until(() =>
      seen.got.find(
        (m) =>
          m.topic === 'lenscap/v1/CAM-A/events' && JSON.parse(m.payload).reason === 'ERR_COMMAND_UNKNOWN_OP',
      ),
    );
    assert.equal(JSON.parse(ev.payload).type, 'command_refused');
    assert.equal(JSON.parse(ev.payload).source, 'mqtt:selfdestruct');
  });

  await t.test('malformed command fuzz: hundreds of payloads, no crash, still answers', async () => {
    const ops = ['ping', 'binding', 'trust', 'privacy', 'telemetry', 'nope', 'stream.start'];
    const payloads: Array<string | Buffer> = [
      '',
      'null',
      '[]',
      '"id"',
      '{',
      '{"id":1}',
      '{"id":""}',
      '{"id":"x/y"}',
      '{"id":"a","record":5}',
      '{"id":"a","enabled":"yes"}',
      '{"__proto__":{"id":"x"}}',
      '{"id":"' + 'x'.repeat(500) + '"}',
      Buffer.alloc(70_000, 0x61),
      Buffer.from([0xff, 0xfe, 0x00, 0x01]),
    ];
    let rnd = 7;
    const next = () => (rnd = (rnd * 48271) % 2147483647);
    for (let i = 0; i < 300; i++) {
      let p: string | Buffer;
      if (i < payloads.length * 3) p = payloads[i % payloads.length]!;
      else {
        const len = next() % 200;
        p = Buffer.from(Array.from({ length: len }, () => next() % 256));
        if (i % 3 === 0)
          p = `{"id":"f${i}","record":"${Buffer.from(p).toString('base64')}","enabled":${i % 2 === 0}}`;
      }
      cloud.publish(`lenscap/v1/CAM-A/cmd/${ops[i % ops.length]}`, p, { qos: 0 });
    }
    const ping = await command('CAM-A', 'ping', { id: 'after-fuzz' });
    assert.equal(ping.status, 'ok');
    assert.ok(a.link.isOnline());
    assert.ok(a.link.counters().commandsRefused >= 250, `refused ${a.link.counters().commandsRefused}`);
  });

  await t.test("ACL: camera B can neither read nor write camera A's topics", async () => {
    const b = await rawClient(url, pki.device('CAM-B'), pki.ca.certPem, { clientId: 'CAM-B' });
    clients.push(b);
    const bSeen = collect(b);
    const sub = await b.subscribeAsync(['lenscap/v1/CAM-A/#', 'lenscap/v1/+/state', 'lenscap/v1/CAM-B/#'], {
      qos: 1,
    });
    // mosquitto grants the filter but delivers nothing B may not read: check what arrives.
    assert.equal(sub.length, 3);
    const before = a.link.counters().commandsHandled;
    const privacyBefore = privacy.length;
    await assert.rejects(
      b.publishAsync('lenscap/v1/CAM-A/cmd/privacy', JSON.stringify({ id: 'evil-1', enabled: false }), {
        qos: 1,
      }),
      (err: { code?: number }) => err.code === 0x87,
    );
    await assert.rejects(
      b.publishAsync('lenscap/v1/CAM-A/state', JSON.stringify({ online: false }), { qos: 1, retain: true }),
      (err: { code?: number }) => err.code === 0x87,
    );
    // Traffic on A's topics that B must not see.
    await command('CAM-A', 'ping', { id: 'acl-ping' });
    await quietFor(300, "A's traffic would reach B's subscriptions");
    assert.deepEqual(
      bSeen.got.filter((m) => m.topic.startsWith('lenscap/v1/CAM-A/')),
      [],
    );
    assert.equal(a.link.counters().commandsHandled, before + 1, "only the cloud's ping acted");
    assert.equal(privacy.length, privacyBefore, "B's privacy command never reached A");
    const late = await rawClient(url, pki.device('lenscap-cloud-acl'), pki.ca.certPem, {
      clientId: 'lenscap-cloud-acl',
    });
    clients.push(late);
    const l = collect(late);
    await late.subscribeAsync('lenscap/v1/CAM-A/state', { qos: 1 });
    assert.equal(
      JSON.parse((await l.until(() => l.got[0])).payload).online,
      true,
      "B could not overwrite A's state",
    );
    late.end(true);
    b.end(true);
  });

  await t.test('last will: a SIGKILLed agent process shows offline', async () => {
    writeState(`${tmp.dir}/c`, pki, 'CAM-C');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./agent-link-child.ts', import.meta.url)),
        `${tmp.dir}/c`,
        url,
        'CAM-C',
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child did not come online')), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('online')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await seen.until(() =>
      seen.got.find((m) => m.topic === 'lenscap/v1/CAM-C/state' && JSON.parse(m.payload).online === true),
    );
    child.kill('SIGKILL');
    const will = await seen.until(
      () =>
        seen.got.find((m) => m.topic === 'lenscap/v1/CAM-C/state' && JSON.parse(m.payload).online === false),
      5000,
      'last will',
    );
    assert.deepEqual(JSON.parse(will.payload), { online: false });
  });

  await t.test(
    'broker restart: link comes back, events queued during the outage are delivered in order',
    async () => {
      gate.close();
      const offline = onceWithin(a.link, 'offline', 15_000, "the link's 'offline' after the broker closed");
      await broker.close();
      await offline;
      for (let i = 0; i < 40; i++)
        a.queue.emit({
          type: 'grant_refused',
          at: new Date().toISOString(),
          serial: 'CAM-A',
          reason: 'expired',
          data: { n: i },
        });
      assert.ok(a.queue.size >= 40);
      broker = await startBroker();
      const cloud2 = await rawClient(url, pki.device('lenscap-cloud-t2'), pki.ca.certPem, {
        clientId: 'lenscap-cloud-t2',
      });
      clients.push(cloud2);
      const s2 = collect(cloud2);
      await cloud2.subscribeAsync(['lenscap/v1/CAM-A/events', 'lenscap/v1/CAM-A/state'], { qos: 1 });
      gate.open();
      await a.link.waitOnline(10_000);
      const got = await s2.until(
        () => {
          const ns = s2.got
            .filter((m) => m.topic.endsWith('/events'))
            .map((m) => JSON.parse(m.payload))
            .filter((e) => e.type === 'grant_refused')
            .map((e) => e.data.n);
          return ns.length >= 40 ? ns : undefined;
        },
        10_000,
        '40 events',
      );
      assert.deepEqual(
        got,
        Array.from({ length: 40 }, (_, i) => i),
      );
      await waitUntil(() => a.queue.size === 0, 3000, 'queue empty after acks');
      assert.ok(a.link.counters().reconnects >= 1);
    },
  );

  await t.test('stop publishes {"online":false} before closing', async () => {
    const late = await rawClient(url, pki.device('lenscap-cloud-stop'), pki.ca.certPem, {
      clientId: 'lenscap-cloud-stop',
    });
    clients.push(late);
    const l = collect(late);
    await late.subscribeAsync('lenscap/v1/CAM-A/state', { qos: 1 });
    await l.until(() => l.got.find((m) => JSON.parse(m.payload).online === true));
    await a.link.stop();
    const off = await l.until(() => l.got.find((m) => JSON.parse(m.payload).online === false));
    assert.deepEqual(JSON.parse(off.payload), { online: false });
  });
});

test('docs/mosquitto-acl.conf holds the same rules the tested broker enforces', async () => {
  const { readFileSync } = await import('node:fs');
  const { mosquittoAcl } = await import('../../scripts/dev-cloud/broker-mosquitto.ts');
  const rules = (text: string) =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(
    rules(readFileSync(new URL('../../docs/mosquitto-acl.conf', import.meta.url), 'utf8')),
    rules(mosquittoAcl()),
  );
});
