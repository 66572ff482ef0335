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
import { join } from 'node:path';
import { formatClaimCode } from '../../agent/owner/claim-code.ts';
import { writeClaimSecret } from '../../agent/owner/owner-store.ts';
import { resetCommand } from '../../agent/cli/reset.ts';
import { mintGrant, signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { provisionCamera, runAgent, startTestCloud, testAgentConfig } from '../../harness/agent-runner.ts';
import { claimWithCode, updateMembership } from '../../scripts/dev-cloud/owner-flow.ts';
import { memberJkt } from '../../scripts/dev-cloud/memberships.ts';
import { makeDpopProof, memberOf, newPhoneKeys } from '../../scripts/dev-cloud/owner-phone.ts';
import type { CommandReply } from '../../scripts/dev-cloud/cloud-client.ts';
import { FlvClient } from '../../harness/flv-client.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-OWN-1';

test(
  'owner-held end to end: claim over the relay, confused cloud refused, owner adds bob, reset cuts at once',
  { ...needs('mosquitto'), timeout: 120_000 },
  async (t) => {
    const { dir, cleanup } = makeTempDir('lenscap-agent-');
    t.after(cleanup);
    // Claimed the old way first (cloud-signed binding naming alice and mallory): legacy mode.
    const cam = await provisionCamera(dir, SERIAL, { owner: 'alice', viewers: ['mallory'] });
    const { pki, keys, paths } = cam;
    const code = formatClaimCode(randomBytes(20));
    writeClaimSecret(paths, code);
    const cloud = await startTestCloud(t, dir, cam);
    const { messages } = cloud;

    let n = 0;
    const command = async (
      serial: string,
      op: string,
      payload: Record<string, unknown>,
    ): Promise<CommandReply> => {
      const id = `c${++n}`;
      await cloud.client.publishAsync(`lenscap/v1/${serial}/cmd/${op}`, JSON.stringify({ id, ...payload }), {
        qos: 1,
      });
      await waitUntil(
        () => messages.some((m) => m.topic.endsWith(`/reply/${op}`) && m.json.id === id),
        10_000,
        `reply to ${op}`,
      );
      return messages.find((m) => m.topic.endsWith(`/reply/${op}`) && m.json.id === id)!
        .json as unknown as CommandReply;
    };

    const agent = await runAgent(t, testAgentConfig(cam, cloud.url));
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
    await waitUntil(
      () => messages.some((m) => m.topic.endsWith('/events') && m.json.type === 'owner_claimed'),
      10_000,
      'owner_claimed event',
    );

    // A confused cloud signs a binding naming mallory: refused and reported; mallory gets 0 bytes.
    const confused = await command(SERIAL, 'binding', {
      record: signBindingRecord(keys.binding, { serial: SERIAL, owner: 'mallory', viewers: [], version: 99 }),
    });
    assert.equal(confused.error?.code, 'ERR_BINDING_OWNER_HELD');
    await waitUntil(
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
    await waitUntil(
      () => messages.some((m) => m.topic.endsWith('/events') && m.json.type === 'owner_reset'),
      10_000,
      'owner_reset event',
    );
  },
);
