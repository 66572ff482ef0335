/**
 * The cloud learns a camera is offline from its silence when no last will arrives (RabbitMQ loses the
 * will with the broker node that held the connection; any broker loses it with itself): the pure rule
 * (scripts/dev-cloud/liveness.ts), and the dev cloud client applying it over a real aedes broker with
 * mTLS, where a camera that goes away without a will is shown offline after `staleAfterMs` while a
 * camera that keeps sending telemetry stays online.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startAedesBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { connectCloudClient } from '../../scripts/dev-cloud/cloud-client.ts';
import { silentCameras } from '../../scripts/dev-cloud/liveness.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { quietFor } from '../../harness/wait.ts';

test('silentCameras: online and not heard from for longer than the window; 0 turns it off', () => {
  const cams = [
    { serial: 'A', online: true, lastHeardMs: 1000 },
    { serial: 'B', online: true, lastHeardMs: 9000 },
    { serial: 'C', online: false, lastHeardMs: 0 },
    { serial: 'D', online: true },
  ];
  assert.deepEqual(silentCameras(cams, 10_000, 5000), ['A']);
  assert.deepEqual(silentCameras(cams, 6000, 5000), [], 'exactly at the window is not yet silent');
  assert.deepEqual(silentCameras(cams, 100_000, 0), []);
});

test('a camera gone without a will is shown offline after staleAfterMs; one sending telemetry is not', async (t) => {
  const ca = DevCa.create('liveness CA');
  const server = ca.issueServer('broker');
  const broker = await startAedesBroker({ tls: { key: server.key, cert: server.cert, ca: ca.certPem } });
  t.after(() => broker.close());
  const cloudId = ca.issueClient('lenscap-cloud');
  const cloud = await connectCloudClient({
    url: broker.url,
    key: cloudId.key,
    cert: cloudId.cert,
    ca: ca.certPem,
    staleAfterMs: 1500,
  });
  t.after(() => cloud.close());
  const cam = async (serial: string) => {
    const pem = ca.issueClient(serial);
    const c = await mqtt.connectAsync(broker.url, {
      key: pem.key,
      cert: pem.cert,
      ca: ca.certPem,
      clientId: serial,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await c.publishAsync(`lenscap/v1/${serial}/state`, JSON.stringify({ online: true }), {
      qos: 1,
      retain: true,
    });
    return c;
  };
  const gone = await cam('CAM-GONE');
  const alive = await cam('CAM-ALIVE');
  await Promise.all([cloud.waitOnline('CAM-GONE', 5000), cloud.waitOnline('CAM-ALIVE', 5000)]);
  // CAM-GONE vanishes without a will (no DISCONNECT, none registered); CAM-ALIVE keeps talking.
  gone.stream.destroy();
  const beat = setInterval(
    () => void alive.publish('lenscap/v1/CAM-ALIVE/telemetry', JSON.stringify({ up: 1 })),
    300,
  );
  t.after(() => clearInterval(beat));
  // Silence is counted from the last message the cloud got from it (its state), not from here.
  const t0 = cloud.camera('CAM-GONE')!.lastHeardMs!;
  const offline = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('CAM-GONE never shown offline')), 10_000);
    cloud.on('state', (c) => {
      if (c.serial === 'CAM-GONE' && !c.online) {
        clearTimeout(timer);
        resolve(Date.now() - t0);
      }
    });
  });
  assert.ok(offline > 1500, `not before the window (${offline} ms after it last spoke)`);
  assert.equal(cloud.camera('CAM-GONE')?.silent, true);
  await quietFor(2000, 'CAM-ALIVE would be shown offline (past the 1.5 s window) if telemetry did not count');
  assert.equal(cloud.camera('CAM-ALIVE')?.online, true, 'telemetry keeps it online');
  clearInterval(beat);
  await alive.endAsync();
});
