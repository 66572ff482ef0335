/**
 * The test PKI and the test mosquitto together: a device cert made by scripts/dev-cloud/ca.ts
 * authenticates over real mTLS, mosquitto reports the CN as the username, a foreign CA is refused,
 * and restart() keeps the port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { makeTempDir } from '../../harness/tmp.ts';
import { makeTestPki } from '../../harness/pki.ts';
import { startMosquitto } from '../../harness/mosquitto.ts';
import { needs } from '../../harness/requires.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';

function connect(url: string, pem: { key: string; cert: string }, ca: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, {
      key: pem.key,
      cert: pem.cert,
      ca,
      reconnectPeriod: 0,
      connectTimeout: 4000,
      protocolVersion: 5,
    });
    c.once('connect', () => resolve(c));
    c.once('error', (e) => (c.end(true), reject(e)));
    c.once('close', () => reject(new Error('closed before connect')));
  });
}

test(
  'device cert authenticates to mosquitto; CN is the username; foreign CA refused; restart keeps port',
  needs('mosquitto'),
  async () => {
    const tmp = makeTempDir();
    const pki = makeTestPki(tmp.dir, ['CAM-0001']);
    const mq = await startMosquitto({
      dir: tmp.dir,
      caPem: pki.caPem,
      serverCert: pki.server.cert,
      serverKey: pki.server.key,
      acl: 'pattern readwrite lenscap/v1/%u/#\n',
    });
    try {
      const c = await connect(mq.url, pki.devices.get('CAM-0001')!, pki.serverCaPem);
      await mq.waitForLog(/u'CAM-0001'/);
      assert.deepEqual(mq.usernames(), ['CAM-0001']);
      await c.endAsync();

      const foreign = DevCa.create('foreign').issueClient('CAM-0001');
      await assert.rejects(connect(mq.url, foreign, pki.serverCaPem));

      const port = mq.port;
      await mq.restart();
      assert.equal(mq.port, port);
      const c2 = await connect(mq.url, pki.devices.get('CAM-0001')!, pki.serverCaPem);
      await c2.endAsync();
    } finally {
      await mq.stop();
      tmp.cleanup();
    }
  },
);
