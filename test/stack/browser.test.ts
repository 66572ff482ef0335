/**
 * The viewer page in a real headless Chromium against the real local stack (`npm start` in a temp
 * dir): alice watches CAM-DEMO-1 and the video element advances (currentTime grows, frames are
 * decoded); the incident replay presents alice's camera-1 grant to CAM-DEMO-2, which refuses it as
 * wrong_audience with zero media bytes, and camera 2's security event reaches the page.
 * A screenshot is saved in the test's temp dir (LENSCAP_SCREENSHOT=path also copies it there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from '../../harness/requires.ts';
import { launchBrowser } from '../../harness/browser.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { startStackProcess } from './stack-process.ts';

test(
  'viewer page: alice watches camera 1, the incident replay is refused by camera 2',
  { ...needs('chromium'), timeout: 180_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-browser-');
    const stack = startStackProcess(tmp.dir);
    let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
    try {
      const info = await stack.ready;
      browser = await launchBrowser();
      const { page } = browser;
      await page.goto(info.pageUrl);
      await page.selectOption('[data-testid="user"]', 'alice');
      const watch = page.locator('[data-testid="watch-CAM-DEMO-1"]');
      await watch.waitFor({ timeout: 10_000 });
      assert.equal(
        await page.locator('[data-testid="watch-CAM-DEMO-2"]').count(),
        0,
        "alice must not see bob's camera",
      );
      await page.waitForSelector('#cameras li[data-serial="CAM-DEMO-1"][data-online="true"]', {
        timeout: 10_000,
      });

      const t0 = Date.now();
      await watch.click();
      await page.waitForFunction(
        () => (document.querySelector('video') as HTMLVideoElement).currentTime > 0.2,
        null,
        { timeout: 30_000 },
      );
      const ttff = Date.now() - t0;
      const first = await page.evaluate(() => {
        const v = document.querySelector('video') as HTMLVideoElement;
        return { t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames };
      });
      await page.waitForTimeout(1500);
      const later = await page.evaluate(() => {
        const v = document.querySelector('video') as HTMLVideoElement;
        return { t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames };
      });
      assert.ok(later.t > first.t + 0.5, `currentTime must grow: ${first.t} → ${later.t}`);
      assert.ok(
        later.frames > first.frames && later.frames > 5,
        `decoded frames must grow: ${first.frames} → ${later.frames}`,
      );
      assert.equal(await page.textContent('[data-testid="grant-viewer"]'), 'alice');
      assert.equal(await page.textContent('[data-testid="grant-camera"]'), 'CAM-DEMO-1');
      assert.match(
        (await page.textContent('[data-testid="grant-expiry"]')) ?? '',
        /^\d+ s \(renews 20 s before expiry\)$/,
      );
      // npm start's own gate probes (no grant → refused `missing`) are labelled as such, not as attacks.
      await page.waitForSelector('#events li[data-reason="missing"]', { timeout: 10_000 });
      const missing = await page.$$eval('#events li[data-reason="missing"]', (lis) =>
        lis.map((li) => ({ own: li.getAttribute('data-selfcheck'), text: li.textContent ?? '' })),
      );
      assert.ok(missing.length >= 2, JSON.stringify(missing));
      for (const m of missing) {
        assert.equal(m.own, '1', m.text);
        assert.match(m.text, /start-up check by the stack \(expected\)/);
      }
      t.diagnostic(`watch → playing: ${ttff} ms; ${later.frames} frames decoded in ${later.t.toFixed(1)} s`);

      const i0 = Date.now();
      await page.click('[data-testid="incident"]');
      await page.waitForFunction(
        () => document.querySelector('[data-testid="incident-status"]')?.textContent?.startsWith('HTTP'),
        null,
        { timeout: 10_000 },
      );
      assert.equal(await page.textContent('[data-testid="incident-status"]'), 'HTTP 403');
      assert.equal(await page.textContent('[data-testid="incident-reason"]'), 'wrong_audience');
      assert.match((await page.textContent('[data-testid="incident-frames"]')) ?? '', /^0 \(0 media bytes\)/);
      await page.waitForSelector('[data-testid="incident-event"][data-reason="wrong_audience"]', {
        timeout: 5_000,
      });
      const eventText = (await page.textContent('[data-testid="incident-event"]')) ?? '';
      assert.match(eventText, /CAM-DEMO-2: grant_refused wrong_audience/);
      t.diagnostic(
        `incident: refusal and security event shown ${Date.now() - i0} ms after the click (${eventText})`,
      );
      assert.ok(
        (await page.locator('#events li[data-serial="CAM-DEMO-2"][data-reason="wrong_audience"]').count()) >=
          1,
      );
      // The live view keeps playing while camera 2 refuses.
      assert.ok(
        (await page.evaluate(() => (document.querySelector('video') as HTMLVideoElement).currentTime)) >
          later.t,
      );

      await page.waitForSelector('#telemetry .cam', { timeout: 10_000 }).catch(() => undefined);
      const shot = join(tmp.dir, 'viewer-page.png');
      await page.screenshot({ path: shot, fullPage: true });
      if (process.env.LENSCAP_SCREENSHOT) copyFileSync(shot, process.env.LENSCAP_SCREENSHOT);
      t.diagnostic(`screenshot: ${shot}`);
      assert.deepEqual(
        browser.logs.filter((l) => l.startsWith('[pageerror]')),
        [],
      );
    } finally {
      await browser?.close();
      const { survivors } = await stack.stop();
      tmp.cleanup();
      assert.deepEqual(survivors, []);
    }
  },
);
