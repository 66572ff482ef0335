/**
 * The page's Events panel and the third incident button, in the real Debian Chromium against the
 * real `npm start` (temp dir): the stack turns motion events on with the owner's `events` command;
 * after `lenscap reset` (which forgets that switch) alice claims CAM-DEMO-1 in her browser (her
 * non-extractable X25519 key from IndexedDB is the membership's viewer key), turns events on from
 * her page (relayed `cmd/events`; bob may not), waves at the camera (the test pattern's motion hook),
 * and her page lists the snapshot and the clip the camera sealed and uploaded to the dev cloud's S3
 * server, opens both IN THE BROWSER, decodes the thumbnail and plays the fMP4 clip (readyState ≥ 2,
 * frames decoded). "A cache mixes up users' event thumbnails": bob's page is served alice's very
 * bytes and shows "sealed for someone else" with 0 images decoded; alice still sees hers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { needs } from '../../harness/requires.ts';
import { needsDrawtext } from '../../harness/ffmpeg.ts';
import type { TestBrowser } from '../../harness/browser.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { startStackProcess } from './stack-process.ts';
import { claimInPage, localReset, openAs as openPage, text, waitFor, type Cam } from './page-helpers.ts';

interface Item {
  id: string;
  kind: 'snapshot' | 'clip';
  serial: string;
  sha256: string;
  sealedTo: string[];
}

const chromium = needs('chromium');
const skip = chromium.skip ? chromium : needsDrawtext();

/** The page as `user`, with the Events panel ready (its keys opened, first listing shown). */
async function openAs(url: string, user: string): Promise<TestBrowser> {
  const b = await openPage(url, user);
  await b.page.waitForFunction('!!(window.lenscapMotion && window.lenscapMotion.ready)', null, {
    timeout: 20_000,
  });
  return b;
}

test(
  'events panel: alice opens her sealed snapshot and clip in the browser; the mixed-up cache gives bob only ciphertext',
  { ...skip, timeout: 300_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-eventspage-');
    const stack = startStackProcess(tmp.dir);
    const browsers: TestBrowser[] = [];
    try {
      const info = await stack.ready;
      const cams = info.cameras as unknown as Array<Cam & { events: boolean }>;
      assert.deepEqual(
        cams.map((c) => [c.serial, c.events]),
        [
          ['CAM-DEMO-1', true],
          ['CAM-DEMO-2', true],
        ],
        'npm start turned events on with cmd/events',
      );
      const cam = cams.find((c) => c.serial === 'CAM-DEMO-1')!;
      await localReset(info.pageUrl, cam);

      const alice = await openAs(info.pageUrl, 'alice');
      const bob = await openAs(info.pageUrl, 'bob');
      browsers.push(alice, bob);

      // alice claims CAM-DEMO-1 in her browser: her browser's X25519 key is the viewer key now.
      assert.match(
        await claimInPage(alice, cam.serial, cam.claimCode),
        /^claimed: CAM-DEMO-1 is owned by alice/,
      );
      const aliceKid = await text(alice, 'motion-kid');
      assert.equal(aliceKid, await text(alice, 'my-kid'));

      // The reset forgot the last owner's events switch: alice, the new owner, turns events on.
      await alice.page.click('[data-testid="events-on-CAM-DEMO-1"]');
      await alice.page.waitForFunction(
        () =>
          /events on|refused|error|not_owner/.test(
            document.querySelector('[data-testid="motion-wave"]')?.textContent ?? '',
          ),
        null,
        { timeout: 15_000 },
      );
      assert.match(await text(alice, 'motion-wave'), /^CAM-DEMO-1: events on/);
      // bob is not the owner: the dev cloud does not relay his switch.
      const bobSwitch = await fetch(`${info.pageUrl}/api/events/switch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'bob', serial: 'CAM-DEMO-1', enabled: false }),
      });
      assert.equal(bobSwitch.status, 403);
      await bobSwitch.body?.cancel();

      // Motion in front of the camera (the test pattern's hook), from alice's page.
      await alice.page.click('[data-testid="wave-CAM-DEMO-1"]');
      const t0 = Date.now();
      const mine = await waitFor(
        "alice's snapshot and clip uploaded and announced",
        async () => {
          const r = (await (await fetch(`${info.pageUrl}/api/motion?user=alice`)).json()) as {
            items: Item[];
          };
          const got = r.items.filter((i) => i.sealedTo.includes(aliceKid));
          return got.some((i) => i.kind === 'snapshot') && got.some((i) => i.kind === 'clip')
            ? got
            : undefined;
        },
        90_000,
      );
      t.diagnostic(`motion → snapshot + clip uploaded in ${Date.now() - t0} ms`);
      const snap = mine.find((i) => i.kind === 'snapshot')!;
      const clip = mine.find((i) => i.kind === 'clip')!;
      assert.deepEqual(snap.sealedTo, [aliceKid], 'sealed to alice’s browser key only');

      // alice's page opens both in the browser and decodes the thumbnail.
      await alice.page
        .waitForSelector(`#motion-list li[data-id="${snap.id}"][data-state="opened"][data-decoded]`, {
          timeout: 20_000,
        })
        .catch(async () =>
          assert.fail(
            `alice's snapshot not decoded: ${await text(alice, 'motion-counts')} ${alice.logs.join(' | ')}`,
          ),
        );
      assert.match(
        (await alice.page.getAttribute(`#motion-list li[data-id="${snap.id}"]`, 'data-decoded')) ?? '',
        /^640x360$/,
      );
      await alice.page.waitForSelector(`#motion-list li[data-id="${clip.id}"][data-state="opened"]`, {
        timeout: 20_000,
      });
      assert.ok(Number(await alice.page.getAttribute('[data-testid="motion-counts"]', 'data-decoded')) >= 1);
      assert.match(await text(alice, 'motion-list'), /sealed for you — opened in this browser/);

      // The clip plays: fMP4 through a blob URL, decoded frames and time advance.
      await alice.page.click(`[data-testid="play-${clip.id}"]`);
      const played = (await alice.page
        .waitForFunction(
          `(() => {
            const v = document.querySelector('[data-testid="motion-video"]');
            const f = v.getVideoPlaybackQuality().totalVideoFrames;
            return v.readyState >= 2 && v.currentTime > 0.3 && f > 3
              ? { readyState: v.readyState, currentTime: v.currentTime, frames: f, w: v.videoWidth, err: v.error && v.error.code }
              : false;
          })()`,
          null,
          { timeout: 20_000 },
        )
        .then((h) => h.jsonValue())
        .catch(async () =>
          assert.fail(
            `alice's clip did not play: ${JSON.stringify(
              await alice.page.evaluate(
                `(() => { const v = document.querySelector('[data-testid="motion-video"]'); return { rs: v.readyState, t: v.currentTime, err: v.error && v.error.message }; })()`,
              ),
            )} ${alice.logs.join(' | ')}`,
          ),
        )) as { readyState: number; currentTime: number; frames: number; w: number };
      assert.equal(played.w, 640);
      t.diagnostic(`alice's clip plays: ${JSON.stringify(played)}`);

      // A correct cloud lists nothing of CAM-DEMO-1 for bob and refuses him the bytes.
      const bobList = (await (await fetch(`${info.pageUrl}/api/motion?user=bob`)).json()) as {
        items: Item[];
      };
      assert.equal(bobList.items.filter((i) => i.serial === 'CAM-DEMO-1').length, 0);
      const denied = await fetch(`${info.pageUrl}/api/artifact?user=bob&id=${encodeURIComponent(snap.id)}`);
      assert.equal(denied.status, 403);
      await denied.body?.cancel();

      // The incident: the mixed-up cache serves alice's thumbnails and clips to bob.
      await bob.page.click('[data-testid="cache-incident"]');
      await bob.page.waitForSelector('[data-testid="cache-decoded"][data-decoded]', { timeout: 30_000 });
      const served = Number(await bob.page.getAttribute('[data-testid="cache-served"]', 'data-count'));
      assert.ok(served >= 2, `the cache served bob ${served} of alice's artifacts`);
      assert.match(await text(bob, 'cache-served'), /of alice's CAM-DEMO-1 served to bob/);
      assert.equal(await text(bob, 'cache-decoded'), '0');
      assert.match(await text(bob, 'cache-seal'), /^sealed for someone else/);
      const states = await bob.page.$$eval('#cache-list li', (lis) =>
        lis.map((li) => (li as HTMLElement).dataset.state),
      );
      assert.equal(states.length, served);
      assert.ok(
        states.every((s) => s === 'not-for-you'),
        `every served artifact refused by bob's key: ${states}`,
      );
      assert.equal(await bob.page.$$eval('#cache-list img', (imgs) => imgs.length), 0, 'no image shown');
      const bobCounts = (await bob.page.evaluate('window.lenscapMotion.cache')) as Record<string, number>;
      assert.deepEqual(
        { opened: bobCounts.opened, decoded: bobCounts.decoded, notForMe: bobCounts.notForMe },
        { opened: 0, decoded: 0, notForMe: served },
      );
      // What bob was served is alice's real artifact, byte for byte (ciphertext).
      const cached = Buffer.from(
        await (
          await fetch(`${info.pageUrl}/api/cache/artifact?user=bob&id=${encodeURIComponent(snap.id)}`)
        ).arrayBuffer(),
      );
      assert.equal(createHash('sha256').update(cached).digest('hex'), snap.sha256);
      t.diagnostic(
        `mixed-up cache: ${served} of alice's artifacts served to bob, 0 opened, 0 images decoded`,
      );

      // alice still sees and decodes hers.
      await alice.page.evaluate('window.lenscapMotion.refresh(true)');
      await alice.page.waitForSelector(
        `#motion-list li[data-id="${snap.id}"][data-state="opened"][data-decoded]`,
        {
          timeout: 10_000,
        },
      );
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
