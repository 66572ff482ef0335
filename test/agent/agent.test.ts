/**
 * The whole agent, composed by the controller, end to end on this machine: a real identity from
 * the dev CA, a real mosquitto over mTLS with the per-serial ACL, real ffmpeg (test pattern) and
 * the real HTTPS gate. A valid grant plays; the incident (camera A's grant at camera B) is refused
 * with not one FLV byte, and the cloud receives the misroute alarm; stop publishes offline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startAgent } from '../../agent/controller.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { silentLogger } from '../../agent/log.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { mosquittoAcl } from '../../scripts/dev-cloud/broker-mosquitto.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { mintGrant, signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { FlvClient } from '../../harness/flv-client.ts';
import { startMosquitto } from '../../harness/mosquitto.ts';
import { makeTestPki } from '../../harness/pki.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const SERIAL = 'CAM-E2E-1';

test(
  'the agent end to end: online, plays a valid grant, refuses the incident with 0 bytes, reports it, goes offline',
  { ...needs('mosquitto'), timeout: 90_000 },
  async (t) => {
    const { dir, cleanup } = makeTempDir('lenscap-agent-');
    t.after(cleanup);
    const pki = makeTestPki(dir, [SERIAL]);
    const keys = await loadOrCreateSigningKeys(join(dir, 'dev'));
    const paths = stateLayout(join(dir, 'state'));
    for (const d of [paths.root, paths.identityDir, paths.cloudDir, paths.trustDir])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(paths.root, 0o700);
    chmodSync(paths.identityDir, 0o700);
    const device = pki.devices.get(SERIAL)!;
    writeFileSync(paths.deviceKey, device.key, { mode: 0o600 });
    writeFileSync(paths.deviceCert, device.cert);
    writeFileSync(paths.chain, '');
    writeFileSync(paths.deviceCa, pki.caPem);
    writeFileSync(paths.brokerCa, pki.serverCaPem);
    writeFileSync(paths.trustRoot, JSON.stringify(keys.trustRootJwk));
    writeFileSync(paths.trustBundle, keys.trustBundle);
    writeFileSync(
      paths.binding,
      signBindingRecord(keys.binding, { serial: SERIAL, owner: 'alice', version: 1 }),
    );

    const broker = await startMosquitto({
      dir: join(dir, 'mosquitto'),
      caPem: pki.caPem,
      serverCert: pki.server.cert,
      serverKey: pki.server.key,
      acl: mosquittoAcl('lenscap-cloud-test'),
    });
    t.after(() => broker.stop());

    const config = configSchema.parse({
      stateDir: paths.root,
      cloud: {
        url: broker.url.replace(/^mqtts:\/\/[^:]+/, 'mqtts://localhost'),
        backoff: { initialDelayMaxMs: 0, baseMs: 200, capMs: 2000 },
      },
      gate: { host: '127.0.0.1', port: 0, tls: true },
      stream: { mode: 'on-demand', idleStopSeconds: 5 },
      camera: { driver: 'testpattern', width: 320, height: 180, fps: 15 },
      telemetry: { intervalSeconds: 5 },
    });

    // The cloud's side: a client with the cloud identity, reading this camera's topics.
    const cloudCert = pki.device('lenscap-cloud-test');
    const cloud = await mqtt.connectAsync(broker.url.replace(/^mqtts:\/\/[^:]+/, 'mqtts://localhost'), {
      key: cloudCert.key,
      cert: cloudCert.cert,
      ca: pki.serverCaPem,
      clientId: 'lenscap-cloud-test',
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    t.after(() => cloud.endAsync());
    const messages: Array<{ topic: string; json: Record<string, unknown> }> = [];
    cloud.on('message', (topic, payload) =>
      messages.push({ topic, json: JSON.parse(payload.toString()) as Record<string, unknown> }),
    );
    await cloud.subscribeAsync(`lenscap/v1/${SERIAL}/#`, { qos: 1 });

    const agent = await startAgent(config, { logger: silentLogger(), env: {} });
    let stopped = false;
    t.after(async () => {
      if (!stopped) await agent.stop('test end');
    });
    assert.equal(agent.serial, SERIAL, 'the serial is the certificate CN');
    await agent.link!.waitOnline(15_000);
    await waitFor(
      () => messages.some((m) => m.topic.endsWith('/state') && m.json.online === true),
      10_000,
      'retained online state',
    );

    // A valid grant plays real video over the device-certificate HTTPS gate.
    const good = mintGrant(keys.issuer, { serial: SERIAL, viewer: 'alice', ttlSeconds: 60 });
    const viewer = FlvClient.http({
      url: `${agent.gateUrl}/live/${SERIAL}.flv`,
      headers: { authorization: `Bearer ${good.token}` },
      ca: pki.caPem,
      rejectUnauthorized: false,
    });
    await viewer.waitForKeyframe(20_000);
    assert.equal(viewer.result.status, 200);
    assert.ok(viewer.result.parser.sawSequenceHeader);
    viewer.close();

    // The incident: alice's grant for another camera presented here.
    const misrouted = mintGrant(keys.issuer, { serial: 'CAM-E2E-2', viewer: 'alice', ttlSeconds: 60 });
    const stranger = FlvClient.http({
      url: `${agent.gateUrl}/live/${SERIAL}.flv`,
      headers: { authorization: `Bearer ${misrouted.token}` },
      ca: pki.caPem,
      rejectUnauthorized: false,
    });
    await stranger.waitClosed(10_000);
    assert.equal(stranger.result.status, 403);
    assert.equal(stranger.result.flvBodyBytes, 0, 'not one media byte to the wrong viewer');
    assert.deepEqual(stranger.json(), { error: 'wrong_audience' });
    await waitFor(
      () =>
        messages.some(
          (m) =>
            m.topic.endsWith('/events') &&
            m.json.reason === 'wrong_audience' &&
            m.json.claimedAud === 'CAM-E2E-2',
        ),
      10_000,
      'the misroute alarm on events',
    );

    // A command round trip, then a clean stop publishes offline.
    await cloud.publishAsync(`lenscap/v1/${SERIAL}/cmd/ping`, JSON.stringify({ id: 'p1' }), { qos: 1 });
    await waitFor(
      () => messages.some((m) => m.topic.endsWith('/reply/ping') && m.json.status === 'ok'),
      10_000,
      'ping reply',
    );
    await agent.stop('test');
    stopped = true;
    await waitFor(
      () => messages.some((m) => m.topic.endsWith('/state') && m.json.online === false),
      10_000,
      'offline state',
    );
  },
);

function waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}
