/**
 * Push in owner-held mode (issue 14 item 4): `cmd/stream.start` carries the DPoP proof of the
 * grant's key (htm `PUSH`, htu `urn:lenscap:push:<serial>`). Real claim, real P-256/X25519 keys,
 * real ffmpeg test pattern into the real hub, a real relay (node-media-server in its own process).
 * A missing, reused, stale, misdirected (another camera, another method) or foreign-key proof is
 * refused with its reason and a security event, and the relay receives not one byte: no publish,
 * and a viewer pulling the relay's path gets nothing. A member's valid proof then pushes (the
 * relay sees the publish and the stream opens for her key), so the silence above is the refusal.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { createPushService, type PushService } from '../../agent/push/push.ts';
import { membershipViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { silentLogger } from '../../agent/log.ts';
import { FlvClient } from '../../harness/flv-client.ts';
import { quietFor, reached, within } from '../../harness/wait.ts';
import {
  makeClaim,
  makeDpopProof,
  memberOf,
  newPhoneKeys,
  type PhoneKeys,
} from '../../scripts/dev-cloud/owner-phone.ts';

const SERIAL = 'CAM-0001';
const HTU = `urn:lenscap:push:${SERIAL}`;
let m: MediaFixture;
let relay: ChildProcess;
let urls: { rtmpBase: string; httpBase: string };
let push: PushService;
let alice: PhoneKeys;
let bob: PhoneKeys;
let mallory: PhoneKeys;
const publishes: string[] = [];

before(async () => {
  m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 1, grants: { ownerHeld: true } });
  alice = newPhoneKeys('alice');
  bob = newPhoneKeys('bob');
  mallory = newPhoneKeys('mallory');
  const { nonce } = m.f.owner!.claimNonce();
  m.f.owner!.claim(
    makeClaim(alice, { code: m.f.code!, serial: SERIAL, nonce, viewers: [memberOf(bob, 'viewer')] }),
  );
  relay = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../../harness/relay-child.ts', import.meta.url))],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: relay.stdout! });
  urls = await within(
    new Promise((resolve) =>
      lines.on('line', (line) => {
        const o = JSON.parse(line) as { ready?: boolean; msg?: string; serial?: string } & typeof urls;
        if (o.ready) resolve(o);
        if (o.msg === 'relay: push started') publishes.push(o.serial ?? '?');
      }),
    ),
    60_000,
    'the relay child to print ready',
  );
  push = createPushService({
    serial: SERIAL,
    grants: m.f.gate,
    stream: m.stream,
    ffmpegPath: m.stream.ffmpegPath,
    relayAllowList: [],
    clock: m.f.clock,
    logger: silentLogger(),
    retryMs: 300,
    viewerKeys: membershipViewerKeys(m.f.owner!),
  });
});
after(async () => {
  await push?.close();
  relay?.stdin?.end();
  if (relay) await reached(() => relay!.exitCode !== null || relay!.signalCode !== null, 3000);
  relay?.kill('SIGKILL');
  await m?.close();
});

const grantFor = (who: PhoneKeys) =>
  m.f.mint({ viewer: who.sub, jkt: who.jkt, relay: `${urls.rtmpBase}/${SERIAL}`, scope: 'live relay' });
const proofBy = (who: PhoneKeys, grant: string, over: Partial<Parameters<typeof makeDpopProof>[1]> = {}) =>
  makeDpopProof(who, { htm: 'PUSH', htu: HTU, token: grant, ...over });

const outcome = (r: Awaited<ReturnType<PushService['start']>>) =>
  r.ok ? { ok: true } : { ok: false, reason: r.reason };

test('every wrong push proof is refused with its reason; the relay receives nothing', async (t) => {
  // A pull of the relay's path the whole time: it must see no media while pushes are refused.
  const watcher = FlvClient.http({ url: `${urls.httpBase}/live/${SERIAL}.flv` });
  const now = Math.floor(Date.now() / 1000);
  const rows: Array<[string, () => [string, string | undefined], string]> = [
    ['no proof', () => [grantFor(bob), undefined], 'proof_missing'],
    [
      'a stale proof',
      () => {
        const g = grantFor(bob);
        return [g, proofBy(bob, g, { iat: now - 600 })];
      },
      'proof_invalid',
    ],
    [
      "a proof for another camera's push",
      () => {
        const g = grantFor(bob);
        return [g, proofBy(bob, g, { htu: 'urn:lenscap:push:CAM-0002' })];
      },
      'proof_invalid',
    ],
    [
      'a viewer proof (htm GET) used for a push',
      () => {
        const g = grantFor(bob);
        return [g, proofBy(bob, g, { htm: 'GET' })];
      },
      'proof_invalid',
    ],
    [
      "a proof by another key (mallory's, on bob's grant)",
      () => {
        const g = grantFor(bob);
        return [g, proofBy(mallory, g)];
      },
      'proof_invalid',
    ],
    [
      "alice's grant with bob's proof",
      () => {
        const g = grantFor(alice);
        return [g, proofBy(bob, g)];
      },
      'proof_invalid',
    ],
  ];
  try {
    for (const [name, make, reason] of rows) {
      await t.test(name, async () => {
        const n = m.f.events.events.length;
        const [g, dpop] = make();
        assert.deepEqual(outcome(await push.start(g, { dpop })), { ok: false, reason });
        assert.ok(
          m.f.events.events.slice(n).some((e) => e.type === 'grant_refused' && e.reason === reason),
          `a grant_refused security event for ${reason}`,
        );
      });
    }
    // Time enough for a push that slipped through to show up at the relay.
    await quietFor(3000, 'a refused push would publish at the relay');
    assert.deepEqual(publishes, [], 'no publish reached the relay');
    assert.equal(watcher.result.parser.tags.length, 0, 'no FLV tag came out of the relay');
    assert.equal(push.active().length, 0);
  } finally {
    watcher.close();
  }
});

test('a valid proof pushes (the positive control); the same proof again is refused', async () => {
  const watcher = FlvClient.http({ url: `${urls.httpBase}/live/${SERIAL}.flv` });
  const g = grantFor(bob);
  const proof = proofBy(bob, g);
  try {
    const r = await push.start(g, { dpop: proof });
    assert.equal(r.ok, true, JSON.stringify(r));
    await watcher.waitForKeyframe(20_000);
    assert.deepEqual(publishes, [SERIAL], 'the valid push reached the relay');
    if (r.ok) await push.stop(r.jti);
  } finally {
    watcher.close();
  }
  // Reused: the same grant and proof (proof id spent), or the proof with another grant (ath).
  assert.deepEqual(outcome(await push.start(g, { dpop: proof })), { ok: false, reason: 'proof_replayed' });
  assert.deepEqual(outcome(await push.start(grantFor(bob), { dpop: proof })), {
    ok: false,
    reason: 'proof_invalid',
  });
  assert.equal(push.active().length, 0);
});
