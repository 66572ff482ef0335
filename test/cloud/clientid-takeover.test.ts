/**
 * Issue 12 #3 on a real mosquitto with the dev broker's generated config: a device certificate
 * presenting another client's id (CAM-B's certificate claiming CAM-A, then the cloud's id) must not
 * take the victim's session over. The broker takes the client id from the certificate CN
 * (use_identity_as_username + use_username_as_clientid), so the attacker lands on its own id, the
 * victim stays connected, and the cloud never sees it go offline.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { startMosquittoBroker } from '../../scripts/dev-cloud/broker-mosquitto.ts';
import { registerCoreCommands } from '../../agent/cloud/core-commands.ts';
import { systemClock } from '../../agent/clock.ts';
import { collect, makeLink, makePki, rawClient, testConfig, writeState } from './fixture.ts';

test(
  'a foreign client id (CAM-B claiming CAM-A, or the cloud) is replaced by its CN; the victims stay online',
  { ...needs('mosquitto'), timeout: 60_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-takeover-');
    const pki = makePki();
    const broker = await startMosquittoBroker({
      dir: `${tmp.dir}/broker`,
      tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.cert },
    });
    const clients: MqttClient[] = [];
    const a = makeLink({
      serial: 'CAM-A',
      paths: writeState(`${tmp.dir}/a`, pki, 'CAM-A'),
      config: testConfig(broker.url),
    });
    t.after(async () => {
      await a.link.stop().catch(() => undefined);
      a.queue.close();
      for (const c of clients) c.end(true);
      await broker.close();
      tmp.cleanup();
    });
    registerCoreCommands(a.registry, {
      clock: systemClock,
      acceptBinding: () => ({}),
      acceptTrustBundle: () => ({}),
      setPrivacy: () => undefined,
      sendTelemetry: () => ({}),
    });
    a.link.start();
    await a.link.waitOnline(5000);

    const cloud = await rawClient(broker.url, pki.cloud, pki.ca.cert, { clientId: 'lenscap-cloud' });
    clients.push(cloud);
    let cloudClosed = 0;
    cloud.on('close', () => cloudClosed++);
    const seen = collect(cloud);
    await cloud.subscribeAsync(['lenscap/v1/+/state', 'lenscap/v1/+/reply/+', 'lenscap/v1/+/seen'], {
      qos: 1,
    });
    await seen.until(() => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-A/state'));

    const attempt = async (clientId: string, n: number) => {
      // The attacker holds a genuine device certificate of its own (CAM-B).
      const evil = await rawClient(broker.url, pki.device('CAM-B'), pki.ca.cert, { clientId });
      clients.push(evil);
      // Positive signal that the attacker really was connected and able to act: it publishes on
      // its own prefix and the cloud receives it.
      await evil.publishAsync('lenscap/v1/CAM-B/seen', String(n), { qos: 1 });
      await seen.until(
        () => seen.got.find((m) => m.topic === 'lenscap/v1/CAM-B/seen' && m.payload === String(n)),
        5000,
        `attacker ${n} publish`,
      );
      // The victims are still there: CAM-A answers a command on its existing session.
      cloud.publish('lenscap/v1/CAM-A/cmd/ping', JSON.stringify({ id: `after-${n}` }), { qos: 1 });
      await seen.until(
        () =>
          seen.got.find(
            (m) => m.topic === 'lenscap/v1/CAM-A/reply/ping' && JSON.parse(m.payload).id === `after-${n}`,
          ),
        5000,
        `CAM-A answers after attempt ${n}`,
      );
      evil.end(true);
    };

    await attempt('CAM-A', 1);
    await attempt('lenscap-cloud', 2);

    assert.equal(a.link.isOnline(), true);
    assert.equal(a.link.counters().connects, 1, 'CAM-A was never kicked off (one connection only)');
    assert.equal(cloudClosed, 0, 'the cloud client was never kicked off');
    const offline = seen.got.filter(
      (m) => m.topic === 'lenscap/v1/CAM-A/state' && JSON.parse(m.payload).online === false,
    );
    assert.deepEqual(offline, [], 'the cloud never saw CAM-A go offline');
  },
);
