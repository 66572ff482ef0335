/**
 * The sealed viewer page in the real Debian Chromium (playwright-core): each page makes its own
 * X25519 key pair (private half non-extractable); the camera pushes a sealed stream to the dev
 * relay (node-media-server, own process) for the first page's key. The bound viewer's Worker
 * opens every frame, mpegts.js decodes them (count grows) and the page says "sealed for you"; a
 * second page with another key opens nothing, decodes 0 frames and says "sealed for someone else".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from '../../harness/requires.ts';
import { launchBrowser, type TestBrowser } from '../../harness/browser.ts';
import { reached, waitUntil, within } from '../../harness/wait.ts';
import { serveSealedPage } from '../../scripts/dev-cloud/sealed-page.ts';
import { makeMediaFixture } from '../../harness/media-fixture.ts';
import { createPushService } from '../../agent/push/push.ts';
import { silentLogger } from '../../agent/log.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';

const require = createRequire(import.meta.url);
const WEB = join(dirname(fileURLToPath(import.meta.url)), '../../scripts/dev-cloud/web');

async function pageServer(): Promise<{ url: string; close(): Promise<void> }> {
  const mpegts = readFileSync(join(dirname(require.resolve('mpegts.js/package.json')), 'dist', 'mpegts.js'));
  const css = readFileSync(join(WEB, 'style.css'));
  const srv = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (serveSealedPage(path, res)) return;
    if (path === '/vendor/mpegts.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(mpegts);
    else if (path === '/style.css') res.writeHead(200, { 'content-type': 'text/css' }).end(css);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

interface PageState {
  decoded: number;
  opened: number;
  refused: number;
  sealedForMe?: boolean;
  seal: string;
  decryptMs: number;
  decryptBytes: number;
}
const readState = (b: TestBrowser): Promise<PageState> =>
  b.page.evaluate(() => {
    const s = (window as unknown as { lenscapSealed: PageState }).lenscapSealed;
    return {
      decoded: s.decoded ?? 0,
      opened: s.opened,
      refused: s.refused,
      sealedForMe: s.sealedForMe,
      seal: document.querySelector('[data-testid="seal"]')!.textContent ?? '',
      decryptMs: s.decryptMs,
      decryptBytes: s.decryptBytes,
    };
  });

test(
  'sealed viewer page: the bound viewer decodes a growing number of frames, a wrong viewer 0',
  { ...needs('chromium'), timeout: 180_000 },
  async () => {
    const m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 1 });
    const relay = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('../../harness/relay-child.ts', import.meta.url))],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const published: string[] = [];
    const lines = createInterface({ input: relay.stdout! });
    const urls = await within(
      new Promise<{ rtmpBase: string; httpBase: string }>((resolve) =>
        lines.on('line', (line) => {
          const o = JSON.parse(line) as { ready?: boolean; msg?: string; rtmpBase: string; httpBase: string };
          if (o.ready) resolve(o);
          if (o.msg === 'relay: push started') published.push('x');
        }),
      ),
      60_000,
      'the relay child to print ready',
    );
    const site = await pageServer();
    const browsers: TestBrowser[] = [];
    let push: ReturnType<typeof createPushService> | undefined;
    try {
      const bound = await launchBrowser();
      const wrong = await launchBrowser();
      browsers.push(bound, wrong);
      for (const b of browsers) {
        await b.page.goto(`${site.url}/sealed.html?serial=CAM-0001`);
        await b.page.waitForFunction(
          () => (window as unknown as { lenscapSealed: { publicJwk?: unknown } }).lenscapSealed.publicJwk,
          null,
          { timeout: 10_000 },
        );
      }
      const boundJwk = (await bound.page.evaluate(
        () => (window as unknown as { lenscapSealed: { publicJwk: JsonWebKey } }).lenscapSealed.publicJwk,
      )) as JsonWebKey;
      assert.equal(boundJwk.d, undefined, 'only the public half leaves the page');
      push = createPushService({
        serial: 'CAM-0001',
        grants: m.f.gate,
        stream: m.stream,
        ffmpegPath: m.stream.ffmpegPath,
        relayAllowList: [],
        clock: m.f.clock,
        logger: silentLogger(),
        retryMs: 300,
        viewerKeys: mapViewerKeys({ alice: { kid: 'alice-page', publicKey: boundJwk } }),
      });
      const r = await push.start(m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001` }));
      assert.equal(r.ok, true, JSON.stringify(r));
      await waitUntil(() => published.length > 0, 20_000, 'the relay to see the push', { stepMs: 100 });
      const src = `${urls.httpBase}/live/CAM-0001.flv`;
      for (const b of browsers)
        await b.page.evaluate(
          (s) =>
            (window as unknown as { lenscapSealed: { start(s: string): boolean } }).lenscapSealed.start(s),
          src,
        );
      await bound.page
        .waitForFunction(
          () =>
            ((window as unknown as { lenscapSealed: { decoded?: number } }).lenscapSealed.decoded ?? 0) > 5,
          null,
          { timeout: 45_000 },
        )
        .catch(async () =>
          assert.fail(
            `bound viewer never decoded: ${JSON.stringify(await readState(bound))} ${bound.logs.join(' | ')}`,
          ),
        );
      const first = await readState(bound);
      await bound.page.waitForTimeout(2000);
      const later = await readState(bound);
      const other = await readState(wrong);
      assert.ok(later.decoded > first.decoded, `decoded frames grow: ${first.decoded} → ${later.decoded}`);
      assert.equal(later.seal, 'sealed for you');
      assert.equal(later.refused, 0, 'the bound viewer refused no frame');
      assert.equal(other.decoded, 0, 'a wrong viewer decodes 0 frames');
      assert.equal(other.opened, 0);
      assert.ok(other.refused > 0, 'the wrong viewer did receive the (sealed) stream');
      assert.equal(other.seal, 'sealed for someone else — nothing to show');
      const mbps = (later.decryptBytes * 8) / 1e6 / (later.decryptMs / 1000);
      process.stdout.write(
        `# browser decrypt (incl. HPKE open) ${mbps.toFixed(1)} Mb/s over ${later.decryptBytes} bytes\n`,
      );
    } finally {
      await push?.close();
      for (const b of browsers) await b.close();
      await site.close();
      relay.stdin?.end();
      await reached(() => relay.exitCode !== null || relay.signalCode !== null, 3000);
      relay.kill('SIGKILL');
      await m.close();
    }
  },
);
