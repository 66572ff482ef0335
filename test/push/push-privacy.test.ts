/**
 * Privacy wins over push: turning privacy on (cloud or switch) stops a running push at once — no
 * more media reaches the relay, the status light goes off — and a new push grant is refused as
 * privacy_mode until privacy is off again. Real relay (own process), real grants, real ffmpeg.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { createPushService, type PushService } from '../../agent/push/push.ts';
import { silentLogger } from '../../agent/log.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { makeViewer } from '../../harness/viewer-keys.ts';
import { within } from '../../harness/wait.ts';

let m: MediaFixture;
let relay: ChildProcess;
let urls: { rtmpBase: string; httpBase: string };
let push: PushService;

before(async () => {
  m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 1 });
  relay = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../../harness/relay-child.ts', import.meta.url))],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: relay.stdout! });
  urls = await within(
    new Promise((resolve) => {
      lines.on('line', (line) => {
        const o = JSON.parse(line) as { ready?: boolean; rtmpBase: string; httpBase: string };
        if (o.ready) resolve(o);
      });
    }),
    60_000,
    'the relay child to print ready',
  );
  push = createPushService({
    serial: 'CAM-0001',
    grants: m.f.gate,
    stream: m.stream,
    ffmpegPath: m.stream.ffmpegPath,
    relayAllowList: [],
    clock: m.f.clock,
    logger: silentLogger(),
    activity: m.activity,
    privacy: m.privacy,
    retryMs: 300,
    viewerKeys: mapViewerKeys({ alice: (await makeViewer('alice#1')).key }),
  });
});
after(async () => {
  await push?.close();
  relay?.stdin?.end();
  if (relay && relay.exitCode === null)
    await Promise.race([once(relay, 'exit'), new Promise((r) => setTimeout(r, 3000))]);
  relay?.kill('SIGKILL');
  await m?.close();
});

test(
  'privacy on stops a running push and refuses new ones; off lets a fresh grant push again',
  { timeout: 60_000 },
  async () => {
    const r = await push.start(m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 120 }));
    assert.equal(r.ok, true, JSON.stringify(r));
    const viewer = FlvClient.http({ url: `${urls.httpBase}/live/CAM-0001.flv` });
    try {
      await viewer.waitForKeyframe(15_000);
      assert.equal(m.ledValue(), '255');
      m.privacy.set(true, 'test');
      // The tap is detached at once; the relay connection is then closed.
      const t0 = Date.now();
      while (push.active().length > 0 && Date.now() - t0 < 5000)
        await new Promise((res) => setTimeout(res, 20));
      assert.equal(push.active().length, 0, 'push stopped after privacy on');
      await new Promise((res) => setTimeout(res, 700));
      assert.equal(m.ledValue(), '0', 'status light off once nothing is live');
      const n = viewer.result.parser.tags.length;
      await new Promise((res) => setTimeout(res, 1000));
      assert.equal(viewer.result.parser.tags.length, n, 'no media reaches the relay after privacy on');
      // Positive signal: the relay's viewer connection is still open (the relay keeps the stream for
      // its resume grace), so media would have reached it: the silence is privacy, not a dead path.
      assert.equal(viewer.result.closed, false, 'the relay viewer was still connected');
      assert.equal(m.stream.capturePid(), undefined, 'no capture process while privacy is on');
    } finally {
      viewer.close();
    }
    const refused = await push.start(m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001` }));
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.reason, 'privacy_mode');
    assert.equal(push.active().length, 0);

    m.privacy.set(false, 'test');
    const again = await push.start(m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 60 }));
    assert.equal(again.ok, true);
    assert.equal(push.active().length, 1);
    await push.stop(again.ok ? again.jti : '');
  },
);
