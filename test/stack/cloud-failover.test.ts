/**
 * The dev cloud's own MQTT client fails over like a camera (scripts/dev-cloud/cloud-client.ts): given
 * every broker URL it starts at a random one, and when that broker dies it moves to the next with the
 * agent's capped, jittered backoff, resubscribes, and goes on receiving cameras and answering
 * commands. Two real aedes brokers over mTLS (pure JS: runs in the Node-only pass); the RabbitMQ
 * node-kill case with a persistent quorum session is in test/cloud/rabbitmq-cluster.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startAedesBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { connectCloudClient } from '../../scripts/dev-cloud/cloud-client.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { waitUntil } from '../../harness/wait.ts';

test('the dev cloud client moves to the next broker when its broker dies, and keeps hearing cameras', async (t) => {
  const ca = DevCa.create('failover CA');
  const server = ca.issueServer('broker');
  const tls = { key: server.key, cert: server.cert, ca: ca.certPem };
  const a = await startAedesBroker({ tls });
  const b = await startAedesBroker({ tls });
  t.after(() => b.close());
  const cloudId = ca.issueClient('lenscap-cloud');
  let draws = 0;
  const cloud = await connectCloudClient({
    url: [a.url, b.url],
    key: cloudId.key,
    cert: cloudId.cert,
    ca: ca.certPem,
    // the first draw picks the starting broker (a); later ones are backoff jitter
    random: () => (draws++ === 0 ? 0 : 0.5),
    backoff: { baseMs: 100, capMs: 400, dropDelayMaxMs: 200 },
  });
  t.after(() => cloud.close());
  assert.equal(cloud.link().url, a.url);
  await a.close();
  await waitUntil(() => cloud.link().online && cloud.link().url === b.url, 10_000, 'the second broker', {
    detail: () => `still not on it: ${JSON.stringify(cloud.link())}`,
  });
  assert.equal(cloud.link().connects, 2);
  // a camera on the surviving broker: its state reaches the cloud (the subscriptions came along)
  const pem = ca.issueClient('CAM-B');
  const cam = await mqtt.connectAsync(b.url, {
    key: pem.key,
    cert: pem.cert,
    ca: ca.certPem,
    clientId: 'CAM-B',
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  t.after(() => cam.endAsync());
  await cam.publishAsync('lenscap/v1/CAM-B/state', JSON.stringify({ online: true }), {
    qos: 1,
    retain: true,
  });
  await cloud.waitOnline('CAM-B', 5000);
  // and a command round trip through it
  await cam.subscribeAsync('lenscap/v1/CAM-B/cmd/+', { qos: 1 });
  cam.on('message', (topic, payload) => {
    const { id } = JSON.parse(payload.toString()) as { id: string };
    void cam.publish(
      'lenscap/v1/CAM-B/reply/ping',
      JSON.stringify({ id, status: 'ok', data: { pong: true } }),
    );
  });
  const reply = await cloud.command('CAM-B', 'ping', {}, 5000);
  assert.equal(reply.status, 'ok');
});

test('every broker refuses the first connection: a coded error naming them, no retry loop left behind', async () => {
  const ca = DevCa.create('failover CA 2');
  const cloudId = ca.issueClient('lenscap-cloud');
  await assert.rejects(
    connectCloudClient({
      url: ['mqtts://127.0.0.1:1', 'mqtts://127.0.0.1:2'],
      key: cloudId.key,
      cert: cloudId.cert,
      ca: ca.certPem,
      backoff: { baseMs: 50, capMs: 100 },
    }),
    (e: Error & { code?: string }) =>
      e.code === 'ERR_CLOUD_CONNECT' &&
      e.message.includes('127.0.0.1:1') &&
      e.message.includes('127.0.0.1:2'),
  );
});
