// The soak kills its broker with SIGKILL (an outage, not a shutdown) and asserts that every security
// event raised meanwhile reaches the cloud. That holds only if the broker keeps the cloud's
// persistent session through the crash, as a production broker's durable sessions do: otherwise an
// agent that reconnects before the cloud publishes into a broker with no subscriber and its events
// are gone (CI's full pass lost 6 of 6 that way on a loaded machine). Here the cloud is made to
// reconnect late on purpose, so the race is decided the same way every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { startFleetBroker } from '../../harness/fleet/backend.ts';
import { connectBenchCloud } from '../../harness/fleet/cloud.ts';
import { loadOrCreateDevCas } from '../../scripts/dev-cloud/ca.ts';
import { reached } from '../../harness/wait.ts';

test(
  'fleet broker killed with SIGKILL keeps the cloud subscription: an event published before the cloud is back reaches it',
  { ...needs('mosquitto'), timeout: 60_000 },
  async () => {
    const tmp = makeTempDir('lenscap-fleet-broker-');
    const { deviceCa, serverCa } = loadOrCreateDevCas(join(tmp.dir, 'dev'));
    const broker = await startFleetBroker(join(tmp.dir, 'broker'), deviceCa, serverCa);
    const cloud = await connectBenchCloud({
      url: broker.url,
      ca: serverCa.certPem,
      ...deviceCa.issueClient('lenscap-cloud'),
      reconnectPeriodMs: 4000,
    });
    const device = deviceCa.issueClient('CAM-FLEET-1');
    let cam: mqtt.MqttClient | undefined;
    try {
      await broker.stop('SIGKILL');
      await broker.restart();
      cam = await mqtt.connectAsync(broker.url, {
        ...device,
        ca: serverCa.certPem,
        protocolVersion: 5,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
      await cam.publishAsync('lenscap/v1/CAM-FLEET-1/events', JSON.stringify({ jti: 'while-cloud-away' }), {
        qos: 1,
      });
      const arrived = await reached(
        () => cloud.events.some((e) => (e.event as { jti?: string }).jti === 'while-cloud-away'),
        20_000,
        { stepMs: 100 },
      );
      assert.ok(
        arrived,
        'the event the broker accepted (PUBACK) while the cloud reconnected never reached it',
      );
    } finally {
      await cam?.endAsync(true).catch(() => undefined);
      await cloud.close();
      await broker.stop('SIGKILL');
      tmp.cleanup();
    }
  },
);
