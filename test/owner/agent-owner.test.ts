/**
 * Owner-held trust through the whole agent (controller) and the real MQTT command path: a camera
 * claimed the old way keeps working until its owner claims it with the label code over the cloud
 * relay; then a confused cloud's binding naming mallory is refused and reported, mallory's grants
 * are refused with 0 bytes, the owner adds bob and bob watches with a key-bound grant and a DPoP
 * proof, and `lenscap reset` on the running camera cuts the open session at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startAgent } from '../../agent/controller.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { silentLogger } from '../../agent/log.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { formatClaimCode } from '../../agent/owner/claim-code.ts';
import { writeClaimSecret } from '../../agent/owner/owner-store.ts';
import { resetCommand } from '../../agent/cli/reset.ts';
import { mosquittoAcl } from '../../scripts/dev-cloud/broker-mosquitto.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { mintGrant, signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { claimWithCode, updateMembership } from '../../scripts/dev-cloud/owner-flow.ts';
import { memberJkt } from '../../scripts/dev-cloud/memberships.ts';
import { makeDpopProof, memberOf, newPhoneKeys } from '../../scripts/dev-cloud/owner-phone.ts';
import type { CommandReply } from '../../scripts/dev-cloud/cloud-client.ts';
import { FlvClient } from '../../harness/flv-client.ts';
import { startMosquitto } from '../../harness/mosquitto.ts';
import { makeTestPki } from '../../harness/pki.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const SERIAL = 'CAM-OWN-1';

test(
  'owner-held end to end: claim over the relay, confused cloud refused, owner adds bob, reset cuts at once',
  { ...needs('mosquitto'), timeout: 120_000 },
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
    // Claimed the old way first (cloud-signed binding naming alice and mallory): legacy mode.
    writeFileSync(
      paths.binding,
      signBindingRecord(keys.binding, { serial: SERIAL, owner: 'alice', viewers: ['mallory'], version: 1 }),
    );
    const code = formatClaimCode(randomBytes(20));
    writeClaimSecret(paths, code);

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

    let n = 0;
    const command = async (
      serial: string,
      op: string,
      payload: Record<string, unknown>,
    ): Promise<CommandReply> => {
      const id = `c${++n}`;
      await cloud.publishAsync(`lenscap/v1/${serial}/cmd/${op}`, JSON.stringify({ id, ...payload }), {
        qos: 1,
      });
      await waitFor(
        () => messages.some((m) => m.topic.endsWith(`/reply/${op}`) && m.json.id === id),
        10_000,
        `reply to ${op}`,
      );
      return messages.find((m) => m.topic.endsWith(`/reply/${op}`) && m.json.id === id)!
        .json as unknown as CommandReply;
    };

    const agent = await startAgent(config, { logger: silentLogger(), env: {} });
    t.after(() => agent.stop('test end'));
    await agent.link!.waitOnline(15_000);
    const url = `${agent.gateUrl}/live/${SERIAL}.flv`;
    const watch = (headers: Record<string, string>) =>
      FlvClient.http({ url, headers, ca: pki.caPem, rejectUnauthorized: false });
    const devDir = join(dir, 'dev');
    const alice = newPhoneKeys('alice');
    const bob = newPhoneKeys('bob');
    const mallory = newPhoneKeys('mallory');
    const keyBound = (who: typeof alice) => {
      const jkt = memberJkt(devDir, SERIAL, who.sub);
      const g = mintGrant(keys.issuer, {
        serial: SERIAL,
        viewer: who.sub,
        ttlSeconds: 60,
        ...(jkt ? { jkt } : {}),
      });
      return {
        authorization: `Bearer ${g.token}`,
        dpop: makeDpopProof(who, { htm: 'GET', htu: url, token: g.token }),
      };
    };

    // Legacy: the cloud's binding still decides (migration), a plain grant plays.
    const legacy = watch({
      authorization: `Bearer ${mintGrant(keys.issuer, { serial: SERIAL, viewer: 'alice', ttlSeconds: 60 }).token}`,
    });
    await legacy.waitForKeyframe(20_000);
    legacy.close();

    // The owner claims with the label code through the cloud relay.
    const wrong = await command(SERIAL, 'claim', {
      nonce: 'x'.repeat(22),
      proof: 'AAAA',
      membership: 'a.b.c',
    });
    assert.equal(wrong.status, 'error');
    await claimWithCode(command, { devDir, serial: SERIAL, code, owner: alice });
    await waitFor(
      () => messages.some((m) => m.topic.endsWith('/events') && m.json.type === 'owner_claimed'),
      10_000,
      'owner_claimed event',
    );

    // A confused cloud signs a binding naming mallory: refused and reported; mallory gets 0 bytes.
    const confused = await command(SERIAL, 'binding', {
      record: signBindingRecord(keys.binding, { serial: SERIAL, owner: 'mallory', viewers: [], version: 99 }),
    });
    assert.equal(confused.error?.code, 'ERR_BINDING_OWNER_HELD');
    await waitFor(
      () => messages.some((m) => m.topic.endsWith('/events') && m.json.reason === 'ERR_BINDING_OWNER_HELD'),
      10_000,
      'the confused binding reported',
    );
    for (const h of [
      keyBound(mallory),
      {
        authorization: `Bearer ${mintGrant(keys.issuer, { serial: SERIAL, viewer: 'mallory', ttlSeconds: 60 }).token}`,
      },
    ]) {
      const m = watch(h);
      await m.waitClosed(10_000);
      assert.equal(m.result.status, 403);
      assert.deepEqual(m.json(), { error: 'viewer_not_bound' });
      assert.equal(m.result.flvBodyBytes, 0);
    }
    // A plain (legacy-style) grant for alice is no longer enough: no key binding.
    const plain = watch({
      authorization: `Bearer ${mintGrant(keys.issuer, { serial: SERIAL, viewer: 'alice', ttlSeconds: 60 }).token}`,
    });
    await plain.waitClosed(10_000);
    assert.deepEqual(plain.json(), { error: 'key_not_bound' });
    assert.equal(plain.result.flvBodyBytes, 0);

    // The owner adds bob; bob watches with his key.
    await updateMembership(command, {
      devDir,
      serial: SERIAL,
      signer: alice,
      members: [memberOf(alice, 'owner'), memberOf(bob, 'viewer')],
    });
    const b = watch(keyBound(bob));
    await b.waitForKeyframe(20_000);
    assert.equal(b.result.status, 200);

    // lenscap reset on the running camera: bob's session is cut at once, the camera is unclaimed.
    const t0 = Date.now();
    assert.equal(
      await resetCommand.run(['--yes', '--state-dir', paths.root], {
        out: () => undefined,
        err: () => undefined,
      }),
      0,
    );
    await b.waitClosed(5_000);
    const cutMs = Date.now() - t0;
    assert.ok(cutMs < 2000, `cut ${cutMs} ms after lenscap reset`);
    const after = watch(keyBound(alice));
    await after.waitClosed(10_000);
    assert.deepEqual(after.json(), { error: 'not_claimed' });
    assert.equal(after.result.flvBodyBytes, 0);
    await waitFor(
      () => messages.some((m) => m.topic.endsWith('/events') && m.json.type === 'owner_reset'),
      10_000,
      'owner_reset event',
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
