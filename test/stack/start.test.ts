/**
 * `npm start` from a clean state: the dev cloud, two provisioned and claimed agents, stack.json,
 * the page served, each gate refusing a request without a grant and streaming with one; then
 * SIGTERM stops every process of the tree (agents, ffmpeg, broker), frees the ports and removes
 * stack.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { readFlvHead } from '../../harness/flv-client.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { pageCameras, pageGrant, startStackProcess } from './stack-process.ts';

function portClosed(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

test(
  'npm start comes up from clean state, serves the page, and leaves nothing behind',
  { timeout: 150_000 },
  async () => {
    const tmp = makeTempDir('lenscap-start-');
    const stack = startStackProcess(tmp.dir);
    try {
      const info = await stack.ready;
      assert.deepEqual(info.serials, ['CAM-DEMO-1', 'CAM-DEMO-2']);
      assert.match(info.pageUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(info.brokerUrl, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
      // The object store the cameras upload sealed event artifacts to: HTTPS on loopback.
      const objectStore = (info as unknown as { objectStore: { url: string; caFile: string } }).objectStore;
      assert.match(objectStore.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(existsSync(objectStore.caFile), 'the object store CA file named in stack.json exists');
      const out = stack.output();
      assert.match(out, /\[9\/9\] write stack\.json … ok/);
      // Events on through the owner's command (off, saying why, where the motion hook cannot work).
      assert.match(
        out,
        /\[7\/9\] turn motion events on \(the owner's `events` command\) … ok .*CAM-DEMO-2 (on|off \()/,
      );
      // Each camera's label code, in the output and in stack.json; both claimed owner-held.
      for (const c of info.cameras as Array<{ serial: string; claimCode?: string }>) {
        assert.match(c.claimCode ?? '', /^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/, c.serial);
        assert.ok(out.includes(`${c.serial} label code ${c.claimCode}`), `${c.serial}'s code in the output`);
      }
      assert.match(out, /lenscap is up/);

      const page = await fetch(info.pageUrl);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /Replay the incident/);
      assert.deepEqual(await pageCameras(info.pageUrl, 'alice'), [['CAM-DEMO-1', true]]);

      // A real grant from the dev cloud opens camera 1's stream; bob may not get one for it.
      const { body: grant } = await pageGrant(info.pageUrl, 'alice', 'CAM-DEMO-1');
      // Owner-held: the grant is bound to alice's phone key; without its DPoP proof it is refused.
      assert.ok(grant.dpop, 'an owner-held camera gets a DPoP proof with the grant');
      const bare = await readFlvHead(grant.flvUrl, grant.token);
      assert.equal(bare.status, 403);
      assert.equal(bare.bytes, 0);
      const flv = await readFlvHead(grant.flvUrl, grant.token, grant.dpop);
      assert.equal(flv.status, 200);
      assert.equal(flv.head, 'FLV');
      assert.ok(flv.bytes > 1000, `only ${flv.bytes} bytes`);
      assert.equal((await pageGrant(info.pageUrl, 'bob', 'CAM-DEMO-1')).status, 403);

      const { code, survivors } = await stack.stop();
      assert.equal(code, 0, stack.output());
      assert.deepEqual(survivors, [], `processes left behind: ${survivors.join(', ')}`);
      assert.equal(existsSync(stack.stackFile), false, 'stack.json must be removed on shutdown');
      for (const url of [
        info.pageUrl,
        info.brokerUrl.replace('mqtts:', 'http:'),
        (info as unknown as { objectStore: { url: string } }).objectStore.url.replace('https:', 'http:'),
        ...info.cameras.map((c) => c.gateUrl),
      ]) {
        assert.equal(await portClosed(url), true, `${url} still open`);
      }
    } finally {
      await stack.stop(5000);
      tmp.cleanup();
    }
  },
);
