/**
 * Owner-held trust at the real viewer gate: real ffmpeg test pattern into the real in-process hub,
 * real signed grants, real claim with the label code, real P-256 keys and DPoP proofs. A member
 * with a key-bound grant and a fresh proof watches; every other path — no proof, a reused, stale,
 * misdirected or foreign-key proof, a grant minted for another user, a viewer the cloud added on
 * its own — is refused with its reason and not one FLV byte. `lenscap reset` cuts at once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import {
  makeClaim,
  makeDpopProof,
  memberOf,
  newPhoneKeys,
  signMembership,
  type PhoneKeys,
} from '../../scripts/dev-cloud/owner-phone.ts';
import { signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { guardLegacyBinding } from '../../agent/cloud/owner-commands.ts';
import { startResetWatch } from '../../agent/owner/reset.ts';
import { resetCommand } from '../../agent/cli/reset.ts';
import { createNoResetInput } from '../../drivers/reset/none.ts';
import { silentLogger } from '../../agent/log.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-0001';
let m: MediaFixture;
let alice: PhoneKeys;
let bob: PhoneKeys;
let mallory: PhoneKeys;

before(async () => {
  m = await makeMediaFixture({ mode: 'always', grants: { ownerHeld: true, viewers: ['bob', 'mallory'] } });
  alice = newPhoneKeys('alice');
  bob = newPhoneKeys('bob');
  mallory = newPhoneKeys('mallory');
  const owner = m.f.owner!;
  // Before the claim the cloud's binding (alice, bob, mallory) still works: legacy mode.
  assert.equal(owner.mode, 'legacy');
  const { nonce } = owner.claimNonce();
  owner.claim(
    makeClaim(alice, { code: m.f.code!, serial: SERIAL, nonce, viewers: [memberOf(bob, 'viewer')] }),
  );
  assert.equal(owner.mode, 'owner-held');
});
after(async () => {
  await m?.close();
});

const htu = () => m.url();
function headers(grant: string, proof?: string): Record<string, string> {
  return { authorization: `Bearer ${grant}`, ...(proof ? { dpop: proof } : {}) };
}
function grantFor(who: PhoneKeys | undefined, sub: string, extra: Record<string, unknown> = {}): string {
  return m.f.mint({ viewer: sub, ...(who ? { jkt: who.jkt } : {}), ...extra });
}
function proofBy(
  who: PhoneKeys,
  grant: string,
  over: Partial<Parameters<typeof makeDpopProof>[1]> = {},
): string {
  return makeDpopProof(who, { htm: 'GET', htu: htu(), token: grant, ...over });
}

async function refused(c: FlvClient, status: number, error: string): Promise<void> {
  const r = await c.waitClosed(5000);
  assert.equal(r.status, status, `status for ${error}: ${r.body.toString().slice(0, 200)}`);
  assert.deepEqual(c.json(), { error });
  assert.equal(r.flvBodyBytes, 0, 'no FLV body bytes');
  assert.equal(r.body.includes(Buffer.from('FLV')), false);
  assert.equal(r.parser.tags.length, 0);
}

test('a member with a key-bound grant and a fresh DPoP proof watches (HTTP and WebSocket)', async () => {
  const g = grantFor(bob, 'bob');
  const c = FlvClient.http({ url: m.url(), headers: headers(g, proofBy(bob, g)) });
  try {
    const r = await c.waitForKeyframe(8000);
    assert.equal(r.status, 200);
  } finally {
    c.close();
  }
  const g2 = grantFor(alice, 'alice');
  const wsUrl = m.url().replace('http:', 'ws:');
  const w = FlvClient.ws({ url: wsUrl, headers: headers(g2, proofBy(alice, g2, { htu: wsUrl })) });
  try {
    assert.equal((await w.waitForKeyframe(8000)).status, 101);
  } finally {
    w.close();
  }
});

test('every wrong path is refused with its reason and 0 FLV bytes', async (t) => {
  const used = grantFor(bob, 'bob');
  const usedProof = proofBy(bob, used);
  const first = FlvClient.http({ url: m.url(), headers: headers(used, usedProof) });
  await first.waitForKeyframe(8000);
  first.close();
  const now = Math.floor(Date.now() / 1000);
  const rows: Array<[string, () => Record<string, string>, number, string]> = [
    ['no DPoP proof', () => headers(grantFor(bob, 'bob')), 403, 'proof_missing'],
    [
      'a grant without cnf (cloud not key-binding)',
      () => {
        const g = grantFor(undefined, 'bob');
        return headers(g, proofBy(bob, g));
      },
      403,
      'key_not_bound',
    ],
    [
      'a grant bound to another key than the membership lists',
      () => {
        const g = grantFor(mallory, 'bob');
        return headers(g, proofBy(mallory, g));
      },
      403,
      'key_not_bound',
    ],
    // The incident's other half: a grant minted for alice handed to bob's session.
    [
      "alice's grant in bob's hands (bob's proof)",
      () => {
        const g = grantFor(alice, 'alice');
        return headers(g, proofBy(bob, g));
      },
      403,
      'proof_invalid',
    ],
    ['a reused proof (same grant and proof again)', () => headers(used, usedProof), 403, 'proof_replayed'],
    [
      'a stale proof',
      () => {
        const g = grantFor(bob, 'bob');
        return headers(g, proofBy(bob, g, { iat: now - 600 }));
      },
      403,
      'proof_invalid',
    ],
    [
      'a proof from the future',
      () => {
        const g = grantFor(bob, 'bob');
        return headers(g, proofBy(bob, g, { iat: now + 600 }));
      },
      403,
      'proof_invalid',
    ],
    [
      'a proof for another URL',
      () => {
        const g = grantFor(bob, 'bob');
        return headers(g, proofBy(bob, g, { htu: m.url('CAM-0002') }));
      },
      403,
      'proof_invalid',
    ],
    [
      'a proof for another method',
      () => {
        const g = grantFor(bob, 'bob');
        return headers(g, proofBy(bob, g, { htm: 'POST' }));
      },
      403,
      'proof_invalid',
    ],
    [
      'a proof for another grant',
      () => {
        const g = grantFor(bob, 'bob');
        return headers(g, proofBy(bob, grantFor(bob, 'bob')));
      },
      403,
      'proof_invalid',
    ],
    ['a garbage proof', () => headers(grantFor(bob, 'bob'), 'not.a.proof'), 403, 'proof_invalid'],
    // The cloud's binding lists mallory; the owner's membership does not.
    [
      'mallory, bound only by the cloud',
      () => {
        const g = grantFor(mallory, 'mallory');
        return headers(g, proofBy(mallory, g));
      },
      403,
      'viewer_not_bound',
    ],
  ];
  for (const [name, make, status, error] of rows) {
    await t.test(name, async () => {
      const n = m.f.events.events.length;
      const c = FlvClient.http({ url: m.url(), headers: make() });
      try {
        await refused(c, status, error);
      } finally {
        c.close();
      }
      assert.ok(
        m.f.events.events.slice(n).some((e) => e.type === 'grant_refused' && e.reason === error),
        `a grant_refused security event for ${error}`,
      );
    });
  }
  assert.equal(m.gate.sessions.size, 0);
});

test('a confused cloud that binds mallory is refused (ERR_BINDING_OWNER_HELD) and changes nothing', () => {
  const accept = guardLegacyBinding(m.f.owner!, (jws) => m.f.gate.trust.acceptBinding(jws));
  const record = signBindingRecord(m.f.keys.binding, {
    serial: SERIAL,
    owner: 'mallory',
    viewers: [],
    version: 99,
  });
  assert.throws(
    () => accept(record),
    (e: unknown) => isLenscapError(e, 'ERR_BINDING_OWNER_HELD'),
  );
  assert.equal(m.f.gate.trust.bindingRecord?.owner, 'alice');
});

test('the owner removes bob: his next grant is refused; lenscap reset cuts open sessions at once', async () => {
  const owner = m.f.owner!;
  const epoch = owner.current()!.epoch;
  owner.acceptMembership(
    signMembership(alice, { serial: SERIAL, epoch, version: 2, members: [memberOf(alice, 'owner')] }),
  );
  const gb = grantFor(bob, 'bob');
  const cb = FlvClient.http({ url: m.url(), headers: headers(gb, proofBy(bob, gb)) });
  try {
    await refused(cb, 403, 'viewer_not_bound');
  } finally {
    cb.close();
  }
  const watch = startResetWatch({
    paths: m.f.paths,
    logger: silentLogger(),
    input: createNoResetInput(),
    pollMs: 50,
    reset: (source) => {
      owner.reset(source);
      m.f.gate.trust.clearBinding();
      m.gate.sessions.closeAll('owner_reset');
    },
  });
  const g = grantFor(alice, 'alice');
  const c = FlvClient.http({ url: m.url(), headers: headers(g, proofBy(alice, g)) });
  try {
    await c.waitForKeyframe(8000);
    assert.equal(m.gate.sessions.size, 1);
    const out: string[] = [];
    const t0 = Date.now();
    assert.equal(
      await resetCommand.run(['--yes', '--state-dir', m.f.paths.root], {
        out: (l) => out.push(l),
        err: () => undefined,
      }),
      0,
    );
    await waitUntil(() => m.gate.sessions.size === 0, 2000, 'no gate session left');
    const cutMs = Date.now() - t0;
    assert.ok(cutMs < 1000, `session cut ${cutMs} ms after lenscap reset`);
    await c.waitClosed(3000);
  } finally {
    c.close();
    watch.stop();
  }
  assert.equal(owner.isClaimed(), false);
  assert.equal(m.f.gate.trust.isClaimed(), false);
  const g2 = grantFor(alice, 'alice');
  const c2 = FlvClient.http({ url: m.url(), headers: headers(g2, proofBy(alice, g2)) });
  try {
    await refused(c2, 403, 'not_claimed');
  } finally {
    c2.close();
  }
});
