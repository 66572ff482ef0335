/**
 * The dev cloud composition around a given identity side (test PKI here): broker, cloud client,
 * relay and page come up together; a claim travels as a `binding` command over the mTLS broker and
 * resolves on the camera's reply (a camera refusing it fails the claim); close frees every port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import net from 'node:net';
import mqtt from 'mqtt';
import { composeStack, signingSide, type DevCloudIdentity } from '../../scripts/dev-cloud/cloud.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { issue, makeCa } from '../../harness/forge-pki.ts';

const ca = makeCa('test device CA');
const server = issue(ca, 'broker', 'server');
const cloudId = issue(ca, 'lenscap-cloud', 'client');
const cam = issue(ca, 'CAM-DEMO-1', 'client');
const { privateKey } = generateKeyPairSync('ed25519');

function signJws(payload: object, typ: string): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg: 'EdDSA', typ, kid: 'test' })}.${enc(payload)}`;
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
}

const identity: DevCloudIdentity = {
  provisioningUrl: 'https://127.0.0.1:1',
  provisioningCaFile: '/dev/null',
  deviceCaPem: ca.cert,
  brokerTls: server,
  brokerCaPem: ca.cert,
  cloudClientTls: cloudId,
  createToken: async () => 'token',
  bindingCommand: async (serial, owner, viewers) => ({
    record: signJws({ serial, owner, viewers, version: 1, iat: 0 }, 'lenscap-binding+jwt'),
  }),
  mintGrant: async (serial, viewer, ttl) => {
    const iat = Math.floor(Date.now() / 1000);
    const c = {
      iss: 'test',
      aud: serial,
      sub: viewer,
      jti: randomUUID(),
      iat,
      exp: iat + ttl,
      scope: 'live',
    };
    return { token: signJws(c, 'lenscap-grant+jwt'), ...c };
  },
  close: async () => undefined,
};

function closed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

test(
  'composed dev cloud: page, broker, claim over the binding command, clean close',
  { timeout: 30_000 },
  async () => {
    const tmp = makeTempDir('lenscap-cloud-');
    const stack = await composeStack({ ...identity, ...(await signingSide(tmp.dir)) }, { dir: tmp.dir });
    const dev = await mqtt.connectAsync(stack.brokerUrl, {
      key: cam.key,
      cert: cam.cert,
      ca: ca.cert,
      clientId: 'CAM-DEMO-1',
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    try {
      stack.registerCamera({ serial: 'CAM-DEMO-1', label: 'one', gateUrl: 'http://127.0.0.1:9' });
      assert.equal((await fetch(stack.pageUrl)).status, 200);

      // The camera side of the binding command: answer ok first, then refuse.
      let answer: object = { status: 'ok' };
      const received: Array<Record<string, unknown>> = [];
      await dev.subscribeAsync('lenscap/v1/CAM-DEMO-1/cmd/+', { qos: 1 });
      dev.on('message', (topic, payload) => {
        const cmd = JSON.parse(payload.toString()) as Record<string, unknown>;
        received.push(cmd);
        dev.publish(
          `lenscap/v1/CAM-DEMO-1/reply/${topic.split('/').pop()}`,
          JSON.stringify({ id: cmd.id, ...answer }),
          { qos: 1 },
        );
      });
      await stack.claim('CAM-DEMO-1', 'alice');
      assert.equal(received.length, 1);
      assert.equal(typeof received[0]?.record, 'string');
      answer = { status: 'error', error: { code: 'ERR_BINDING_ROLLBACK', message: 'version not higher' } };
      await assert.rejects(stack.claim('CAM-DEMO-1', 'alice'), /ERR_BINDING_ROLLBACK/);
    } finally {
      await dev.endAsync(true);
      const ports = [
        new URL(stack.pageUrl).port,
        new URL(stack.brokerUrl).port,
        new URL(stack.relayRtmpBase).port,
      ].map(Number);
      await stack.close();
      for (const p of ports) assert.equal(await closed(p), true, `port ${p} still open`);
      tmp.cleanup();
    }
  },
);
