/**
 * The dev cloud's brokers over real TLS with real certificates: identity is the cert CN, a device
 * is held to lenscap/v1/<CN>/#, the cloud identity sees every camera, a foreign CA is refused.
 * aedes always; mosquitto when installed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import { startAedesBroker, topicAllowed, type RunningBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { startMosquittoBroker } from '../../scripts/dev-cloud/broker-mosquitto.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { DevCa, type IssuedPem as Pem } from '../../scripts/dev-cloud/ca.ts';
import { quietFor, within } from '../../harness/wait.ts';

test('topicAllowed: own prefix only, no wildcard in the serial level', () => {
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/CAM-1/state'), true);
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/CAM-1/cmd/+'), true);
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/CAM-1/#'), true);
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/CAM-2/state'), false);
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/+/state'), false);
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/#'), false);
  assert.equal(topicAllowed('CAM-1', '#'), false);
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/CAM-10/state'), false);
  assert.equal(topicAllowed('CAM-1', 'lenscap/v1/CAM-1'), false);
  assert.equal(topicAllowed('CAM+', 'lenscap/v1/CAM+/x'), false);
  assert.equal(topicAllowed('lenscap-cloud', 'lenscap/v1/#'), true);
  assert.equal(topicAllowed('lenscap-cloud', 'lenscap/v1/+/state'), true);
  assert.equal(topicAllowed('lenscap-cloud', '$SYS/#'), false);
});

const ca = DevCa.create('test device CA');
const server = ca.issueServer('broker');
const cam1 = ca.issueClient('CAM-1');
const cam2 = ca.issueClient('CAM-2');
const cloud = ca.issueClient('lenscap-cloud');
const foreignCa = DevCa.create('foreign CA');
const foreign = foreignCa.issueClient('CAM-1');

function connect(url: string, id: Pem, clientId: string, protocolVersion: 4 | 5 = 4): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, {
      key: id.key,
      cert: id.cert,
      ca: ca.certPem,
      clientId,
      protocolVersion,
      reconnectPeriod: 0,
      connectTimeout: 4000,
    });
    c.once('connect', () => resolve(c));
    c.once('error', (e) => {
      c.end(true);
      reject(e);
    });
    c.once('close', () => reject(new Error('closed before connect')));
  });
}

function end(c: MqttClient): Promise<void> {
  return new Promise((r) => c.end(true, {}, () => r()));
}

function brokerSuite(
  name: string,
  start: () => Promise<RunningBroker>,
  protocolVersion: 4 | 5,
  opts: { skip?: string },
) {
  describe(`${name} broker ACL over mTLS`, opts, () => {
    let broker: RunningBroker;
    before(async () => {
      broker = await start();
    });
    after(async () => {
      await broker?.close();
    });

    test('device reads/writes its own topics; the cloud sees every camera', async () => {
      const dev = await connect(broker.url, cam1, 'CAM-1', protocolVersion);
      const cl = await connect(broker.url, cloud, 'lenscap-cloud', protocolVersion);
      try {
        await cl.subscribeAsync('lenscap/v1/+/state', { qos: 1 });
        await dev.subscribeAsync('lenscap/v1/CAM-1/cmd/+', { qos: 1 });
        const gotState = within(
          new Promise<string>((r) => cl.on('message', (t, p) => t.endsWith('/state') && r(`${t} ${p}`))),
          10_000,
          'the state message at the cloud',
        );
        await dev.publishAsync('lenscap/v1/CAM-1/state', '{"online":true}', { qos: 1, retain: true });
        assert.equal(await gotState, 'lenscap/v1/CAM-1/state {"online":true}');
        const gotCmd = within(
          new Promise<string>((r) => dev.on('message', (t) => r(t))),
          10_000,
          'the cmd message at the device',
        );
        await cl.publishAsync('lenscap/v1/CAM-1/cmd/ping', '{"id":"1"}', { qos: 1 });
        assert.equal(await gotCmd, 'lenscap/v1/CAM-1/cmd/ping');
        await cl.publishAsync('lenscap/v1/CAM-1/state', '', { qos: 1, retain: true });
      } finally {
        await end(dev);
        await end(cl);
      }
    });

    test("a device cannot subscribe to or publish on another camera's topics", async () => {
      const a = await connect(broker.url, cam1, 'CAM-1', protocolVersion);
      const b = await connect(broker.url, cam2, 'CAM-2', protocolVersion);
      const cl = await connect(broker.url, cloud, 'lenscap-cloud', protocolVersion);
      try {
        // aedes refuses in SUBACK (0x80); mosquitto 2.0 grants and then never delivers: assert delivery.
        const suback = await a
          .subscribeAsync(['lenscap/v1/CAM-2/#', 'lenscap/v1/+/cmd/+', '#'], { qos: 1 })
          .then(
            () => 'granted',
            () => 'refused',
          );
        if (broker.kind === 'aedes') assert.equal(suback, 'refused');
        const leakedToA: string[] = [];
        a.on('message', (t) => leakedToA.push(t));
        const seenByB: string[] = [];
        b.on('message', (t, p) => seenByB.push(`${t} ${p}`));
        await b.subscribeAsync('lenscap/v1/CAM-2/cmd/+', { qos: 1 });
        await cl.publishAsync('lenscap/v1/CAM-2/cmd/ping', 'from-cloud', { qos: 1 });
        a.publish('lenscap/v1/CAM-2/cmd/ping', 'from-CAM-1', { qos: 0 });
        await quietFor(300, "CAM-1's forged command would reach CAM-2, or CAM-2's commands reach CAM-1");
        assert.deepEqual(seenByB, ['lenscap/v1/CAM-2/cmd/ping from-cloud']);
        assert.deepEqual(leakedToA, []);
      } finally {
        await end(a);
        await end(b);
        await end(cl);
      }
    });

    test('a certificate from a foreign CA is refused at the TLS handshake', async () => {
      const c = mqtt.connect(broker.url, {
        key: foreign.key,
        cert: foreign.cert,
        ca: ca.certPem,
        clientId: 'CAM-1',
        protocolVersion,
        reconnectPeriod: 0,
        connectTimeout: 3000,
      });
      const outcome = await within(
        new Promise<string>((r) => {
          c.once('connect', () => r('connected'));
          c.once('error', () => r('error'));
          c.once('close', () => r('closed'));
        }),
        15_000,
        'the foreign-CA connect to end',
      );
      c.end(true);
      assert.notEqual(outcome, 'connected');
    });
  });
}

brokerSuite(
  'aedes',
  () => startAedesBroker({ tls: { key: server.key, cert: server.cert, ca: ca.certPem } }),
  4,
  {},
);

test('aedes: client id must be the certificate CN', async () => {
  const broker = await startAedesBroker({ tls: { key: server.key, cert: server.cert, ca: ca.certPem } });
  try {
    await assert.rejects(connect(broker.url, cam1, 'CAM-2'));
  } finally {
    await broker.close();
  }
});

const tmp = makeTempDir('lenscap-mosq-');
after(() => tmp.cleanup());
brokerSuite(
  'mosquitto',
  () => startMosquittoBroker({ tls: { key: server.key, cert: server.cert, ca: ca.certPem }, dir: tmp.dir }),
  5,
  needs('mosquitto'),
);
