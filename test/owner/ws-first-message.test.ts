/**
 * The WebSocket path a browser can use (issue 14 item 4): it cannot set Authorization or DPoP
 * headers, so with the `lenscap-grant` sub-protocol the grant and its DPoP proof travel in the
 * first message. Real gate, real ffmpeg test pattern into the real hub, a real claim, real P-256
 * keys. A member's fresh proof for `ws://host/live/<serial>.flv` plays; a missing, reused, stale,
 * misdirected or foreign-key proof, junk or silence is refused with its reason and not one binary
 * (media) byte crosses the socket.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import {
  makeClaim,
  makeDpopProof,
  memberOf,
  newPhoneKeys,
  type PhoneKeys,
} from '../../scripts/dev-cloud/owner-phone.ts';
import { FIRST_MESSAGE_PROTOCOL } from '../../agent/gate/gate.ts';

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
  const { nonce } = m.f.owner!.claimNonce();
  m.f.owner!.claim(
    makeClaim(alice, { code: m.f.code!, serial: SERIAL, nonce, viewers: [memberOf(bob, 'viewer')] }),
  );
});
after(async () => {
  await m?.close();
});

interface WsResult {
  protocol: string;
  binaryBytes: number;
  texts: string[];
  closeCode?: number;
  closeReason?: string;
}

/** Opens the gate's WS with the sub-protocol, sends `first` (unless undefined), collects everything. */
function connect(first: string | undefined, untilMs: number, url = wsUrl()): Promise<WsResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, [FIRST_MESSAGE_PROTOCOL]);
    const r: WsResult = { protocol: '', binaryBytes: 0, texts: [] };
    const finish = () => {
      clearTimeout(t);
      ws.terminate();
      resolve(r);
    };
    const t = setTimeout(finish, untilMs);
    ws.on('open', () => {
      r.protocol = ws.protocol;
      if (first !== undefined) ws.send(first);
    });
    ws.on('message', (d: Buffer, isBinary) => {
      if (isBinary) r.binaryBytes += d.length;
      else r.texts.push(d.toString());
      // Enough media to call it playing.
      if (r.binaryBytes > 20_000) finish();
    });
    ws.on('close', (code, reason) => {
      r.closeCode = code;
      r.closeReason = reason.toString();
      finish();
    });
    ws.on('error', () => finish());
  });
}

const wsUrl = (serial = SERIAL) => m.url(serial).replace('http:', 'ws:');
const grantFor = (who: PhoneKeys, sub = who.sub) => m.f.mint({ viewer: sub, jkt: who.jkt });
const proofBy = (who: PhoneKeys, grant: string, over: Partial<Parameters<typeof makeDpopProof>[1]> = {}) =>
  makeDpopProof(who, { htm: 'GET', htu: wsUrl(), token: grant, ...over });
const first = (grant: string, dpop?: string) => JSON.stringify({ grant, ...(dpop ? { dpop } : {}) });

test('a member sends grant and proof as the first message and receives media', async () => {
  const g = grantFor(bob);
  const r = await connect(first(g, proofBy(bob, g)), 10_000);
  assert.equal(r.protocol, FIRST_MESSAGE_PROTOCOL);
  assert.deepEqual(r.texts, []);
  assert.ok(r.binaryBytes > 20_000, `media flowed: ${r.binaryBytes} bytes`);
});

test('every wrong first message is refused with its reason and 0 media bytes', async (t) => {
  const used = grantFor(bob);
  const usedProof = proofBy(bob, used);
  const ok = await connect(first(used, usedProof), 10_000);
  assert.ok(ok.binaryBytes > 0, 'the original use of the proof played');
  const now = Math.floor(Date.now() / 1000);
  const rows: Array<[string, () => string | undefined, number, string]> = [
    ['no proof', () => first(grantFor(bob)), 4403, 'proof_missing'],
    ['a reused proof', () => first(used, usedProof), 4403, 'proof_replayed'],
    [
      'a stale proof',
      () => {
        const g = grantFor(bob);
        return first(g, proofBy(bob, g, { iat: now - 600 }));
      },
      4403,
      'proof_invalid',
    ],
    [
      'a proof for another URL (the HTTP one)',
      () => {
        const g = grantFor(bob);
        return first(g, proofBy(bob, g, { htu: m.url() }));
      },
      4403,
      'proof_invalid',
    ],
    [
      'a proof for another camera',
      () => {
        const g = grantFor(bob);
        return first(g, proofBy(bob, g, { htu: wsUrl('CAM-0002') }));
      },
      4403,
      'proof_invalid',
    ],
    [
      "a proof by another key (mallory's, on bob's grant)",
      () => {
        const g = grantFor(bob);
        return first(g, proofBy(mallory, g));
      },
      4403,
      'proof_invalid',
    ],
    [
      "alice's grant with bob's proof",
      () => {
        const g = grantFor(alice);
        return first(g, proofBy(bob, g));
      },
      4403,
      'proof_invalid',
    ],
    ['not JSON', () => 'hello', 4401, 'malformed'],
    ['a grant that is not a string', () => JSON.stringify({ grant: 42 }), 4401, 'malformed'],
  ];
  for (const [name, make, code, reason] of rows) {
    await t.test(name, async () => {
      const n = m.f.events.events.length;
      const r = await connect(make(), 5000);
      assert.equal(r.binaryBytes, 0, 'no media byte');
      assert.deepEqual(r.texts, [JSON.stringify({ error: reason })]);
      assert.equal(r.closeCode, code);
      assert.equal(r.closeReason, reason);
      // Unsigned junk is recorded once per source and reason per 10 s (refusal damper): the second
      // malformed row is counted, not recorded again.
      if (name !== 'a grant that is not a string')
        assert.ok(
          m.f.events.events.slice(n).some((e) => e.type === 'grant_refused' && e.reason === reason),
          `a grant_refused security event for ${reason}`,
        );
    });
  }
  await t.test('silence: no first message within 5 s', async () => {
    const r = await connect(undefined, 8000);
    assert.equal(r.binaryBytes, 0);
    assert.equal(r.closeCode, 4401);
    assert.equal(r.closeReason, 'missing');
  });
  assert.equal(m.gate.sessions.size, 0);
});
