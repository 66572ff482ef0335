/**
 * Ownership transfer and reset → claim again, from the viewer page in the real Debian Chromium
 * against the real local stack (`npm start` in a temp dir), each user in their own browser profile
 * with their own non-extractable IndexedDB keys.
 *
 * alice claims CAM-DEMO-1 in her browser. A cloud that swaps bob's directory key for mallory's
 * gets a different key code on alice's screen than on bob's; alice cancels and nothing is signed.
 * With bob's real key alice transfers CAM-DEMO-1 to bob (signed by her owner key, the codes match)
 * and stays a viewer. From then on bob's key decides: alice's owner signatures are refused
 * (ERR_MEMBERSHIP_NOT_OWNER, a membership_refused event, owner/state.json and trust/floors.json
 * byte for byte unchanged); bob adds mallory and she watches with a grant bound to her browser key
 * (DPoP over the gate's WebSocket); bob removes alice and her open session is cut.
 * Then `lenscap reset` (the real root-only verb, in its own process) on the running camera: the
 * open session is cut at once, the camera is unclaimed (owner_reset), bob claims it again in the
 * page with the label code, watches, and the previous claim's membership no longer installs
 * (ERR_MEMBERSHIP_WRONG_EPOCH). A grant mallory's page held from before the reset, sent through the
 * page's own WebSocket loader with a fresh proof, is refused `not_claimed` with 0 bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { needs } from '../../harness/requires.ts';
import type { TestBrowser } from '../../harness/browser.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { startStackProcess } from './stack-process.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { keyCode } from '../../scripts/dev-cloud/key-code.ts';
import {
  claimInPage,
  codeShown,
  eventsSince,
  framesGrow,
  localReset,
  memberStatus,
  openAs,
  resetVerb,
  text,
  waitForEvent,
  watchAndSeeFrames,
  whenReady,
  type Cam,
} from './page-helpers.ts';

interface Relayed {
  epoch: string;
  version: number;
  members: Array<{ sub: string; role: string; jkt: string }>;
  jws: string;
}

async function relayed(pageUrl: string, serial: string): Promise<{ status: number; body: Relayed }> {
  const r = await fetch(`${pageUrl}/api/membership?serial=${serial}`);
  return { status: r.status, body: (await r.json()) as Relayed };
}

async function post(
  pageUrl: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${pageUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** Waits until `b`'s members list shows `owner` as owner at `version`. */
async function membersShow(b: TestBrowser, owner: string, version: number): Promise<void> {
  await b.page.waitForSelector(
    `[data-testid="members-version"][data-owner="${owner}"][data-version="${version}"]`,
    { timeout: 15_000 },
  );
}

/** Waits for the page's play status to say the camera ended the stream; returns when it did. */
async function endedAt(b: TestBrowser, within: number): Promise<number> {
  await b.page.waitForFunction(
    () =>
      /ended by the camera|refused or failed/.test(
        document.querySelector('[data-testid="play-status"]')?.textContent ?? '',
      ),
    null,
    { timeout: within },
  );
  return Date.now();
}

test(
  'page transfer: alice transfers CAM-DEMO-1 to bob, bob decides, alice is refused; lenscap reset cuts at once and bob claims again in the page',
  { ...needs('chromium'), timeout: 420_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-pagetransfer-');
    const stack = startStackProcess(tmp.dir);
    const browsers: TestBrowser[] = [];
    try {
      const info = await stack.ready;
      const url = info.pageUrl;
      const cam = (info.cameras as unknown as Cam[]).find((c) => c.serial === 'CAM-DEMO-1')!;
      const paths = stateLayout(cam.stateDir);
      await localReset(url, cam);

      const alice = await openAs(url, 'alice');
      const bob = await openAs(url, 'bob');
      const mallory = await openAs(url, 'mallory');
      browsers.push(alice, bob, mallory);
      const codes = {
        alice: await text(alice, 'my-code'),
        bob: await text(bob, 'my-code'),
        mallory: await text(mallory, 'my-code'),
      };
      assert.equal(codes.bob, keyCode(await text(bob, 'my-jkt')), 'the page and key-code.ts agree');
      assert.match(codes.bob, /^[A-Z2-7]{4}-[A-Z2-7]{4}$/);
      assert.notEqual(codes.bob, codes.mallory);

      assert.match(
        await claimInPage(alice, cam.serial, cam.claimCode),
        /^claimed: CAM-DEMO-1 is owned by alice/,
      );
      await membersShow(alice, 'alice', 1);

      // ---- a cloud that swaps bob's directory key for mallory's: another code, nothing signed ----
      const malloryKeys = (await (await fetch(`${url}/api/keys?user=mallory`)).json()) as Record<
        string,
        unknown
      >;
      const swapped = await post(url, '/api/keys', {
        user: 'bob',
        jwk: malloryKeys.jwk,
        hpke: malloryKeys.hpke,
      });
      assert.equal(swapped.status, 200);
      const stateBefore = readFileSync(paths.ownerState);
      await alice.page.fill('[data-testid="transfer-user"]', 'bob');
      await alice.page.click('[data-testid="transfer"]');
      const shownForSwap = await codeShown(alice);
      assert.equal(shownForSwap, codes.mallory, "the swapped key shows mallory's key's code");
      assert.notEqual(shownForSwap, codes.bob, "…which is not the code on bob's own screen");
      await alice.page.click('[data-testid="confirm-no"]');
      assert.match(await memberStatus(alice), /^not transferred: the key code for bob was not confirmed/);
      assert.deepEqual(readFileSync(paths.ownerState), stateBefore, 'nothing was signed or installed');
      assert.equal((await relayed(url, cam.serial)).body.version, 1);

      // ---- bob's page registers his real key again; alice transfers, codes match ---------------
      await bob.page.reload();
      await whenReady(bob);
      assert.equal(await text(bob, 'my-code'), codes.bob, "bob's key survived the reload");
      await alice.page.click('[data-testid="transfer"]');
      assert.equal(await codeShown(alice), codes.bob);
      const transferAt = Date.now();
      await alice.page.click('[data-testid="confirm-yes"]');
      assert.match(await memberStatus(alice, await text(alice, 'member-status')), /transferred to bob/);
      const m2 = (await relayed(url, cam.serial)).body;
      assert.equal(m2.version, 2);
      assert.deepEqual(m2.members.map((m) => `${m.sub}:${m.role}`).sort(), ['alice:viewer', 'bob:owner']);
      assert.equal(m2.members.find((m) => m.sub === 'bob')!.jkt, await text(bob, 'my-jkt'));
      const changed = await waitForEvent(
        url,
        cam.serial,
        transferAt,
        (e) => e.type === 'membership_changed',
        'membership_changed',
      );
      assert.equal(changed.event.data?.transferred, true);
      await membersShow(alice, 'bob', 2);
      await membersShow(bob, 'bob', 2); // bob's page followed the camera's event

      // ---- alice's owner key no longer decides: refused, reported, nothing on disk ---------------
      const onDisk = () => [readFileSync(paths.ownerState), readFileSync(paths.versionFloors)];
      const diskBefore = onDisk();
      const refusedFrom = Date.now();
      await alice.page.fill('[data-testid="member-user"]', 'mallory');
      const statusBefore = await text(alice, 'member-status');
      await alice.page.click('[data-testid="member-add"]');
      assert.equal(await codeShown(alice), codes.mallory);
      await alice.page.click('[data-testid="confirm-yes"]');
      assert.match(await memberStatus(alice, statusBefore), /^error: ERR_MEMBERSHIP_NOT_OWNER/);
      await waitForEvent(
        url,
        cam.serial,
        refusedFrom,
        (e) => e.type === 'membership_refused' && e.reason === 'ERR_MEMBERSHIP_NOT_OWNER',
        "the camera's membership_refused ERR_MEMBERSHIP_NOT_OWNER",
      );
      assert.deepEqual(onDisk(), diskBefore, 'owner/state.json and trust/floors.json unchanged');
      assert.equal((await relayed(url, cam.serial)).body.version, 2);
      assert.equal(
        await alice.page.locator('[data-testid^="remove-"]').count(),
        0,
        'alice gets no Remove buttons',
      );

      // ---- bob decides: adds mallory (codes match), she watches with her browser key --------------
      await bob.page.fill('[data-testid="member-serial"]', cam.serial);
      await bob.page.fill('[data-testid="member-user"]', 'mallory');
      const bobStatus = await text(bob, 'member-status');
      await bob.page.click('[data-testid="member-add"]');
      assert.equal(await codeShown(bob), codes.mallory);
      await bob.page.click('[data-testid="confirm-yes"]');
      assert.match(await memberStatus(bob, bobStatus), /^membership v3 accepted by CAM-DEMO-1/);
      await mallory.page.reload(); // her camera list now has CAM-DEMO-1
      await whenReady(mallory);
      const mf = await watchAndSeeFrames(mallory, cam.serial, 'mallory (added by bob)');
      assert.equal(await text(mallory, 'grant-viewer'), 'mallory');
      assert.equal(await text(mallory, 'proof-by'), "DPoP by this browser's key");
      assert.match(await text(mallory, 'transport'), /^WebSocket/);

      // alice, still a viewer, watches; bob removes her and her open session is cut.
      const af = await watchAndSeeFrames(alice, cam.serial, 'alice (viewer after the transfer)');
      const removeFrom = Date.now();
      const beforeRemove = await text(bob, 'member-status');
      await bob.page.click('[data-testid="remove-alice"]');
      const cutAt = await endedAt(alice, 15_000);
      // The camera cuts her session as it installs v4, which can be before bob's page hears back.
      assert.match(await memberStatus(bob, beforeRemove), /^membership v4 accepted/);
      const aliceGrant = await post(url, '/api/grant', { user: 'alice', serial: cam.serial });
      assert.equal(aliceGrant.status, 403, "the cloud mints alice nothing: she is not in bob's membership");
      t.diagnostic(
        `alice (removed by bob) cut ${cutAt - removeFrom} ms after the click; mallory ${mf}, alice ${af} frames`,
      );

      // ---- lenscap reset on the running camera: mallory's open session cut at once -------------
      const oldMembership = (await relayed(url, cam.serial)).body.jws;
      // A grant mallory's page holds from before the reset (unused): presented after it, below.
      await mallory.page.evaluate(`(async () => {
        const r = await fetch('/api/grant', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user: 'mallory', serial: 'CAM-DEMO-1' }),
        });
        window.heldGrant = await r.json();
      })()`);
      await framesGrow(mallory, 'mallory before the reset');
      const resetFrom = Date.now();
      const { returnedAt, realVerb } = await resetVerb(cam);
      const malloryCut = await endedAt(mallory, 10_000);
      await waitForEvent(url, cam.serial, resetFrom, (e) => e.type === 'owner_reset', 'owner_reset');
      // What was already buffered may still be shown for a moment; then the picture stops.
      await mallory.page.waitForTimeout(1000);
      const framesAfterCut = Number(await text(mallory, 'frames'));
      await mallory.page.waitForTimeout(2000);
      assert.equal(
        Number(await text(mallory, 'frames')),
        framesAfterCut,
        'no frame decoded 1-3 s after the cut',
      );
      assert.ok(
        malloryCut - returnedAt < 5000,
        `session cut ${malloryCut - returnedAt} ms after the verb returned`,
      );
      t.diagnostic(
        `${realVerb ? 'lenscap reset (real verb, root)' : 'reset steps (not root)'}: mallory's session ended ${malloryCut - returnedAt} ms after it returned`,
      );
      assert.equal((await relayed(url, cam.serial)).status, 404, 'the dev cloud forgot the membership');
      // The held grant, with a fresh proof by mallory's key, through the page's own WebSocket loader:
      // the unclaimed camera refuses it (reason in the close), and not one byte of media arrives.
      const probe = (await mallory.page.evaluate(`(async () => {
        const g = window.heldGrant;
        const keys = window.lenscapOwner.keys;
        const wsUrl = g.flvUrl.replace(/^http/, 'ws');
        const Loader = window.lenscapOwner.firstMessageLoader(async () =>
          JSON.stringify({
            grant: g.token,
            dpop: await window.lenscapKeys.dpopProof(keys, { htm: 'GET', htu: wsUrl, token: g.token }),
          }),
        );
        const loader = new Loader();
        let bytes = 0;
        return await new Promise((resolve) => {
          loader.onDataArrival = (chunk) => (bytes += chunk.byteLength);
          loader.onError = (type, info) => resolve({ end: 'error', status: info.code, reason: info.msg, bytes });
          loader.onComplete = () => resolve({ end: 'complete', bytes });
          loader.open({ url: wsUrl });
          setTimeout(() => resolve({ end: 'timeout', bytes }), 15000);
        });
      })()`)) as { end: string; status?: number; reason?: string; bytes: number };
      assert.deepEqual(
        { ...probe, status: undefined },
        { end: 'error', status: undefined, reason: 'not_claimed', bytes: 0 },
      );
      assert.ok((probe.status ?? 0) >= 400, `refused with an HTTP-like status (${probe.status})`);
      await bob.page.waitForSelector('#members li.muted', { timeout: 15_000 }); // bob's page: not claimed
      const refusedGrant = await post(url, '/api/grant', { user: 'mallory', serial: cam.serial });
      assert.equal(refusedGrant.status, 403);

      // ---- claim again in the page: bob, with the label code ------------------------------------
      assert.match(
        await claimInPage(bob, cam.serial, cam.claimCode),
        /^claimed: CAM-DEMO-1 is owned by bob \(membership v1\)/,
      );
      await membersShow(bob, 'bob', 1);
      const bf = await watchAndSeeFrames(bob, cam.serial, 'bob (claimed again)');
      assert.equal(await text(bob, 'proof-by'), "DPoP by this browser's key");
      // The previous claim's membership (bob-signed, v4) is dead: a new epoch.
      const replay = await post(url, '/api/membership', { serial: cam.serial, membership: oldMembership });
      assert.deepEqual([replay.status, replay.body.error], [409, 'ERR_MEMBERSHIP_WRONG_EPOCH']);
      t.diagnostic(`bob claimed again in the page and decoded ${bf} frames`);

      const seen = (await eventsSince(url, cam.serial, refusedFrom)).map((e) => e.event.type);
      for (const type of ['membership_refused', 'membership_changed', 'owner_reset', 'owner_claimed'])
        assert.ok(seen.includes(type), `${type} reported (${seen.join(', ')})`);
      for (const b of browsers)
        assert.deepEqual(
          b.logs.filter((l) => l.startsWith('[pageerror]')),
          [],
        );
    } finally {
      for (const b of browsers) await b.close();
      const { survivors } = await stack.stop();
      tmp.cleanup();
      assert.deepEqual(survivors, []);
    }
  },
);
