/**
 * Owner-held trust from the viewer page, in the real Debian Chromium against the real local stack
 * (`npm start` in a temp dir): each user's browser makes its own non-extractable WebCrypto keys
 * (IndexedDB); after `lenscap reset` alice claims CAM-DEMO-1 in her browser with the label code,
 * adds bob from her browser (the page signs the membership), and bob watches with a grant bound to
 * his browser key and a DPoP proof his browser made (decoded frames grow). "A confused cloud adds
 * mallory": the camera refuses the cloud's binding, the cloud-signed membership and mallory's grant
 * (`viewer_not_bound`, 0 media bytes), reports them, and mallory's page shows both. Keys survive a
 * page reload (same origin, same IndexedDB).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { needs } from '../../harness/requires.ts';
import { launchBrowser, type TestBrowser } from '../../harness/browser.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { startStackProcess } from './stack-process.ts';
import { resetCommand } from '../../agent/cli/reset.ts';
import { clearOwnerState } from '../../agent/owner/owner-store.ts';
import { requestReset } from '../../agent/owner/reset.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { freePort } from '../../harness/mosquitto.ts';
import { keyCode } from '../../scripts/dev-cloud/key-code.ts';

interface Cam {
  serial: string;
  claimCode: string;
  stateDir: string;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const text = (b: TestBrowser, id: string) => b.page.textContent(`[data-testid="${id}"]`).then((t) => t ?? '');

async function openAs(url: string, user: string): Promise<TestBrowser> {
  const b = await launchBrowser();
  await b.page.goto(`${url}/?user=${user}`);
  await b.page.waitForFunction(
    () => (window as unknown as { lenscapOwner: { ready?: boolean } }).lenscapOwner.ready,
    null,
    {
      timeout: 15_000,
    },
  );
  return b;
}

/** `lenscap reset` of a running camera (root: the verb itself; otherwise the same two steps). */
async function localReset(pageUrl: string, cam: Cam): Promise<void> {
  const paths = stateLayout(cam.stateDir);
  const since = Date.now();
  if (process.getuid?.() === 0)
    assert.equal(
      await resetCommand.run(['--yes', '--state-dir', cam.stateDir], { out: () => {}, err: () => {} }),
      0,
    );
  else {
    clearOwnerState(paths);
    rmSync(paths.binding, { force: true });
    requestReset(paths, 'test');
  }
  await waitFor(
    'the owner_reset event',
    async () => {
      const r = (await (await fetch(`${pageUrl}/api/events`)).json()) as {
        events: Array<{ serial: string; receivedAt: string; event: { type: string } }>;
      };
      return r.events.some(
        (e) =>
          e.serial === cam.serial &&
          e.event.type === 'owner_reset' &&
          Date.parse(e.receivedAt) >= since - 1000,
      )
        ? true
        : undefined;
    },
    15_000,
  );
}

/** Claims `serial` in the page with the label code; resolves with the status line. */
async function claimInPage(b: TestBrowser, serial: string, code: string): Promise<string> {
  await b.page.fill('[data-testid="member-serial"]', serial);
  await b.page.fill('[data-testid="claim-code"]', code);
  await b.page.click('[data-testid="claim"]');
  await b.page.waitForFunction(
    () => /^claimed|^refused/.test(document.querySelector('[data-testid="claim-status"]')?.textContent ?? ''),
    null,
    { timeout: 20_000 },
  );
  return text(b, 'claim-status');
}

async function framesGrow(b: TestBrowser, who: string): Promise<number> {
  await b.page
    .waitForFunction(() => Number(document.querySelector('[data-testid="frames"]')?.textContent) > 5, null, {
      timeout: 45_000,
    })
    .catch(async () =>
      assert.fail(`${who} never decoded: ${await text(b, 'play-status')} ${b.logs.join(' | ')}`),
    );
  const f1 = Number(await text(b, 'frames'));
  await b.page.waitForTimeout(1500);
  const f2 = Number(await text(b, 'frames'));
  assert.ok(f2 > f1, `${who}'s decoded frames grow: ${f1} → ${f2}`);
  return f2;
}

test(
  'page keys: claim in the browser, alice adds bob, bob watches with his key, mallory is refused',
  { ...needs('chromium'), timeout: 240_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-pagekeys-');
    const stack = startStackProcess(tmp.dir);
    const browsers: TestBrowser[] = [];
    try {
      const info = await stack.ready;
      const cam = (info.cameras as unknown as Cam[]).find((c) => c.serial === 'CAM-DEMO-1')!;
      assert.match(cam.claimCode, /^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$/);

      await localReset(info.pageUrl, cam);

      const alice = await openAs(info.pageUrl, 'alice');
      const bob = await openAs(info.pageUrl, 'bob');
      const mallory = await openAs(info.pageUrl, 'mallory');
      browsers.push(alice, bob, mallory);

      // Keys: made by WebCrypto as non-extractable; only public halves were registered.
      // A string, not a function: tsx's name helper does not exist inside the page.
      const probe = (await bob.page.evaluate(`(async () => {
        const k = await window.lenscapKeys.load('bob');
        const out = [];
        for (const key of [k.signing.privateKey, k.hpke.privateKey])
          out.push(await crypto.subtle.exportKey('jwk', key).then(() => 'exported', (e) => e.name));
        return {
          jkt: k.jkt,
          signingExtractable: k.signing.privateKey.extractable,
          hpkeExtractable: k.hpke.privateKey.extractable,
          signingExport: out[0],
          hpkeExport: out[1],
          alg: k.signing.privateKey.algorithm.namedCurve,
          hpkeAlg: k.hpke.privateKey.algorithm.name,
        };
      })()`)) as Record<string, unknown> & { jkt: string };
      assert.deepEqual(
        { ...probe, jkt: undefined },
        {
          jkt: undefined,
          signingExtractable: false,
          hpkeExtractable: false,
          signingExport: 'InvalidAccessError',
          hpkeExport: 'InvalidAccessError',
          alg: 'P-256',
          hpkeAlg: 'X25519',
        },
      );
      assert.equal(await text(bob, 'my-jkt'), probe.jkt);
      const dir = (await (await fetch(`${info.pageUrl}/api/keys?user=bob`)).json()) as Record<
        string,
        unknown
      >;
      assert.equal(dir.jkt, probe.jkt);
      assert.equal(JSON.stringify(dir).includes('"d"'), false, 'no private part reached the cloud');

      // alice claims CAM-DEMO-1 in her browser with the label code.
      await alice.page.fill('[data-testid="member-serial"]', cam.serial);
      await alice.page.fill('[data-testid="claim-code"]', cam.claimCode.toLowerCase());
      await alice.page.click('[data-testid="claim"]');
      await alice.page.waitForFunction(
        () =>
          /^claimed|^refused/.test(document.querySelector('[data-testid="claim-status"]')?.textContent ?? ''),
        null,
        { timeout: 20_000 },
      );
      assert.match(
        await text(alice, 'claim-status'),
        /^claimed: CAM-DEMO-1 is owned by alice \(membership v1\)/,
      );

      // alice adds bob from her browser: the page signs membership v2 with her key.
      await alice.page.fill('[data-testid="member-user"]', 'bob');
      await alice.page.click('[data-testid="member-add"]');
      // Nothing is signed until alice confirms the key code; it is the code bob's page shows.
      await alice.page.waitForSelector('[data-testid="confirm-box"]:not([hidden])', { timeout: 10_000 });
      assert.equal(await text(alice, 'confirm-code'), await text(bob, 'my-code'));
      assert.equal(await text(bob, 'my-code'), keyCode(probe.jkt));
      await alice.page.click('[data-testid="confirm-yes"]');
      await alice.page.waitForFunction(
        () =>
          /accepted|error/.test(document.querySelector('[data-testid="member-status"]')?.textContent ?? ''),
        null,
        { timeout: 20_000 },
      );
      assert.match(await text(alice, 'member-status'), /^membership v2 accepted by CAM-DEMO-1/);
      await alice.page.waitForSelector('#members li[data-sub="bob"][data-role="viewer"]', { timeout: 5000 });

      // bob reloads (same origin, same IndexedDB: the same key) and watches CAM-DEMO-1.
      await bob.page.reload();
      await bob.page.waitForFunction(
        () => (window as unknown as { lenscapOwner: { ready?: boolean } }).lenscapOwner.ready,
        null,
        { timeout: 15_000 },
      );
      assert.equal(await text(bob, 'my-jkt'), probe.jkt, 'the key survived the reload');
      assert.match(await text(bob, 'keys-state'), /^kept since /);
      const watch = bob.page.locator('[data-testid="watch-CAM-DEMO-1"]');
      await watch.waitFor({ timeout: 10_000 });
      await watch.click();
      await bob.page
        .waitForFunction(
          () => Number(document.querySelector('[data-testid="frames"]')?.textContent) > 5,
          null,
          {
            timeout: 45_000,
          },
        )
        .catch(async () =>
          assert.fail(`bob never decoded: ${await text(bob, 'play-status')} ${bob.logs.join(' | ')}`),
        );
      const f1 = Number(await text(bob, 'frames'));
      await bob.page.waitForTimeout(1500);
      const f2 = Number(await text(bob, 'frames'));
      assert.ok(f2 > f1, `bob's decoded frames grow: ${f1} → ${f2}`);
      assert.equal(await text(bob, 'grant-viewer'), 'bob');
      assert.equal(await text(bob, 'proof-by'), "DPoP by this browser's key");
      assert.match(await text(bob, 'transport'), /^WebSocket, grant \+ DPoP in the first message/);
      t.diagnostic(`bob decoded ${f2} frames with his browser key over the gate's WebSocket`);

      // A confused cloud adds mallory: binding, membership and grant all refused, 0 media bytes.
      await mallory.page.click('[data-testid="confused"]');
      await mallory.page.waitForSelector('[data-testid="confused-status"][data-reason]', { timeout: 20_000 });
      assert.equal(await text(mallory, 'confused-status'), 'HTTP 403 viewer_not_bound');
      assert.equal(
        await mallory.page.getAttribute('[data-testid="confused-bytes"]', 'data-media'),
        '0',
        'mallory got 0 media bytes',
      );
      assert.equal(await text(mallory, 'confused-binding'), 'refused ERR_BINDING_OWNER_HELD');
      assert.equal(await text(mallory, 'confused-membership'), 'refused ERR_MEMBERSHIP_NOT_OWNER');
      // The camera's own reports reached mallory's page.
      await mallory.page.waitForSelector('[data-testid="confused-event"][data-grant][data-membership]', {
        timeout: 10_000,
      });
      assert.match(await text(mallory, 'confused-event'), /grant_refused viewer_not_bound/);
      assert.match(await text(mallory, 'confused-event'), /membership_refused ERR_MEMBERSHIP_NOT_OWNER/);

      // The sealed push: bob's sealed page (same origin, same IndexedDB key) asks the camera to push
      // sealed to his enrolled key and opens it; mallory's page reads the relay's copy and opens nothing.
      const bobSealed = await bob.context.newPage();
      bobSealed.on('pageerror', (e) => bob.logs.push(`[pageerror] ${e.message}`));
      await bobSealed.goto(`${info.pageUrl}/sealed.html?user=bob&serial=CAM-DEMO-1&push=1`);
      await bobSealed
        .waitForFunction(
          () =>
            ((window as unknown as { lenscapSealed: { decoded?: number } }).lenscapSealed.decoded ?? 0) > 5,
          null,
          { timeout: 45_000 },
        )
        .catch(async () =>
          assert.fail(
            `bob's sealed page never decoded: ${await bobSealed.textContent('[data-testid="push-status"]')} ${bob.logs.join(' | ')}`,
          ),
        );
      assert.equal(await bobSealed.textContent('[data-testid="seal"]'), 'sealed for you');
      const malSealed = await mallory.context.newPage();
      await malSealed.goto(`${info.pageUrl}/sealed.html?user=mallory&serial=CAM-DEMO-1&relay=1`);
      await malSealed.waitForFunction(
        () =>
          (window as unknown as { lenscapSealed: { sealedForMe?: boolean } }).lenscapSealed.sealedForMe ===
          false,
        null,
        { timeout: 30_000 },
      );
      await malSealed.waitForTimeout(2000);
      const mal = (await malSealed.evaluate(
        `({ decoded: window.lenscapSealed.decoded, opened: window.lenscapSealed.opened, refused: window.lenscapSealed.refused })`,
      )) as { decoded: number; opened: number; refused: number };
      assert.equal(
        await malSealed.textContent('[data-testid="seal"]'),
        'sealed for someone else — nothing to show',
      );
      assert.deepEqual({ decoded: mal.decoded, opened: mal.opened }, { decoded: 0, opened: 0 });
      assert.ok(mal.refused > 0, 'mallory did receive the (sealed) stream');
      t.diagnostic(`sealed push: bob "sealed for you"; mallory refused ${mal.refused} frames, decoded 0`);

      // bob still plays; nobody's page threw.
      const f3 = Number(await text(bob, 'frames'));
      assert.ok(f3 >= f2);
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

test(
  'page keys survive an npm start restart on the same --port: the browser still owns and watches its camera',
  { ...needs('chromium'), timeout: 300_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-pagekeys-restart-');
    const port = await freePort();
    let stack = startStackProcess(tmp.dir, ['--port', String(port)]);
    let alice: TestBrowser | undefined;
    try {
      const info = await stack.ready;
      assert.equal(info.pageUrl, `http://127.0.0.1:${port}`);
      const cam = (info.cameras as unknown as Cam[]).find((c) => c.serial === 'CAM-DEMO-1')!;
      await localReset(info.pageUrl, cam);
      alice = await openAs(info.pageUrl, 'alice');
      const jkt = await text(alice, 'my-jkt');
      assert.match(await text(alice, 'keys-state'), /^made now/);
      assert.match(
        await claimInPage(alice, cam.serial, cam.claimCode),
        /^claimed: CAM-DEMO-1 is owned by alice/,
      );

      const stopped = await stack.stop();
      assert.deepEqual(stopped.survivors, []);
      stack = startStackProcess(tmp.dir, ['--port', String(port)]);
      const again = await stack.ready;
      assert.equal(again.pageUrl, info.pageUrl, 'the same origin');

      // Same browser profile, same origin: the same IndexedDB keys, and the camera still trusts them.
      await alice.page.goto(`${again.pageUrl}/?user=alice`);
      await alice.page.waitForFunction(
        () => (window as unknown as { lenscapOwner: { ready?: boolean } }).lenscapOwner.ready,
        null,
        { timeout: 15_000 },
      );
      assert.equal(await text(alice, 'my-jkt'), jkt, 'the key survived the restart');
      assert.match(await text(alice, 'keys-state'), /^kept since /);
      const watch = alice.page.locator('[data-testid="watch-CAM-DEMO-1"]');
      await watch.waitFor({ timeout: 10_000 });
      await alice.page.waitForSelector('#cameras li[data-serial="CAM-DEMO-1"][data-online="true"]', {
        timeout: 20_000,
      });
      await watch.click();
      const frames = await framesGrow(alice, 'alice after the restart');
      assert.equal(await text(alice, 'proof-by'), "DPoP by this browser's key");
      t.diagnostic(`after the restart alice decoded ${frames} frames with the key made before it`);
    } finally {
      await alice?.close();
      const { survivors } = await stack.stop();
      tmp.cleanup();
      assert.deepEqual(survivors, []);
    }
  },
);
