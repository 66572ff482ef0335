/**
 * A sealed push through two real relays: nginx with the RTMP module (Debian `nginx` +
 * `libnginx-mod-rtmp`, private instance on a free loopback port) and node-media-server (the dev
 * cloud's relay, in its own process). Pulled back over RTMP play (nginx has no HTTP-FLV) and over
 * HTTP-FLV (NMS): the tags arrive byte for byte as the camera sealed them (with key rotations on the
 * way), the bound viewer opens
 * every frame and a plain decoder shows the picture; a wrong viewer's key opens nothing; a plain
 * ffmpeg with no key decodes nothing of the picture (flat concealment). nginx's part skips by name
 * without nginx or the module (ffmpeg is the agent's own, as in every media test).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { createPushService, type PushService } from '../../agent/push/push.ts';
import { silentLogger } from '../../agent/log.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { FrameOpener } from '../../agent/sealing/opener.ts';
import { isKeyVideo, isSealableVideo, parseSealedBody } from '../../agent/sealing/frame.ts';
import type { FlvTagOut } from '../../agent/sealing/flv-tags.ts';
import type { RtmpClientOptions } from '../../agent/push/rtmp/client.ts';
import { openRtmp } from '../../agent/push/rtmp/client.ts';
import { needsNginxRtmp, startNginxRtmp, type NginxRtmp } from '../../harness/nginx-rtmp.ts';
import {
  decodeLumaStddev,
  flvFile,
  pullHttpFlv,
  pullRtmp,
  type PulledStream,
} from '../../harness/sealed-pull.ts';
import { makeViewer, type TestViewer } from '../../harness/viewer-keys.ts';
import { within } from '../../harness/wait.ts';

const skipNginx = needsNginxRtmp().skip;
let m: MediaFixture;
let nginx: NginxRtmp | undefined;
let nms: ChildProcess | undefined;
let nmsUrls: { rtmpBase: string; httpBase: string };
let push: PushService;
let alice: TestViewer;
let mallory: TestViewer;
/** Every video tag body the push handed to its RTMP connection, per relay URL. */
const sent = new Map<string, Buffer[]>();

before(async () => {
  m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 1 });
  if (!skipNginx) nginx = await startNginxRtmp();
  nms = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../../harness/relay-child.ts', import.meta.url))],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: nms.stdout! });
  nmsUrls = await within(
    new Promise((resolve) =>
      lines.on('line', (line) => {
        const o = JSON.parse(line) as { ready?: boolean; rtmpBase: string; httpBase: string };
        if (o.ready) resolve(o);
      }),
    ),
    60_000,
    'the node-media-server relay child to print ready',
  );
  alice = await makeViewer('alice#1');
  mallory = await makeViewer('mallory#1');
  push = createPushService({
    serial: 'CAM-0001',
    grants: m.f.gate,
    stream: m.stream,
    // The real publisher, watched: what it sends is what the relays must hand out unchanged.
    publish: (o: RtmpClientOptions) => {
      const c = openRtmp(o);
      const list = sent.get(o.url) ?? [];
      sent.set(o.url, list);
      return {
        ...c,
        ready: c.ready,
        closed: c.closed,
        bufferedBytes: () => c.bufferedBytes(),
        close: () => c.close(),
        sendTag: (t) => {
          if (t.type === 9) list.push(Buffer.from(t.body));
          c.sendTag(t);
        },
      };
    },
    relayAllowList: [],
    clock: m.f.clock,
    logger: silentLogger(),
    retryMs: 300,
    // Rotate the content key every ~1.5 s: the relays must carry the new envelopes too.
    rotateAfterMs: 1500,
    viewerKeys: mapViewerKeys({ alice: alice.key }),
  });
});
after(async () => {
  await push?.close();
  await nginx?.close();
  nms?.stdin?.end();
  if (nms && nms.exitCode === null)
    await Promise.race([once(nms, 'exit'), new Promise((r) => setTimeout(r, 3000))]);
  nms?.kill('SIGKILL');
  await m?.close();
});

/**
 * Pushes to `relay` and pulls with `pull` — before the push (nginx lets a player wait for a
 * publisher) or after it (NMS answers an unknown stream with nothing).
 */
async function sealedThrough(
  relay: string,
  pull: () => PulledStream,
  pullFirst: boolean,
): Promise<FlvTagOut[]> {
  let pulled = pullFirst ? pull() : undefined;
  const r = await push.start(m.f.mint({ relay }));
  assert.equal(r.ok, true, JSON.stringify(r));
  if (!pulled) {
    const t0 = Date.now();
    while (!(sent.get(relay)?.length ?? 0) && Date.now() - t0 < 15_000)
      await new Promise((res) => setTimeout(res, 50));
    await new Promise((res) => setTimeout(res, 300));
    pulled = pull();
  }
  try {
    assert.ok(await pulled.waitFor(40, 30_000), `only ${pulled.video.length} video tags through ${relay}`);
    // 40 tags can arrive faster than one key rotation when a loaded machine delivers them in a
    // burst: keep pulling (bounded) until the frames after the first keyframe span two keys.
    const t1 = Date.now();
    while (keyIdsAfterKeyframe(pulled.tags).size < 2 && Date.now() - t1 < 20_000)
      await new Promise((res) => setTimeout(res, 100));
  } finally {
    pulled.close();
    await push.stop(r.ok ? r.jti : '');
  }
  // A player that joined mid-GOP sees inter frames before its first keyframe: nothing to open yet.
  const first = pulled.tags.findIndex((t) => t.type === 9 && isSealableVideo(t.body) && isKeyVideo(t.body));
  assert.ok(first >= 0, 'a keyframe came through');
  // The sequence header (sent clear, ahead of the GOP) stays: a decoder needs it.
  return pulled.tags.filter((t, i) => t.type === 9 && (i >= first || !isSealableVideo(t.body)));
}

function keyIdsAfterKeyframe(tags: FlvTagOut[]): Set<number> {
  const first = tags.findIndex((t) => t.type === 9 && isSealableVideo(t.body) && isKeyVideo(t.body));
  const ids = new Set<number>();
  if (first < 0) return ids;
  for (const t of tags.slice(first))
    if (t.type === 9 && isSealableVideo(t.body))
      try {
        ids.add(parseSealedBody(t.body).keyId);
      } catch {
        /* not a sealed body: checkSealed reports it */
      }
  return ids;
}

async function checkSealed(relay: string, video: FlvTagOut[]): Promise<void> {
  // Byte for byte: every coded frame pulled is one the camera sent, unchanged.
  const mine = new Set((sent.get(relay) ?? []).map((b) => b.toString('base64')));
  const coded = video.filter((t) => isSealableVideo(t.body));
  assert.ok(coded.length >= 25, `${coded.length} coded frames`);
  const keyIds = new Set(coded.map((t) => parseSealedBody(t.body).keyId));
  assert.ok(keyIds.size >= 2, `the key rotated during the push (key ids ${[...keyIds].join(',')})`);
  assert.equal(
    coded.filter((t) => !mine.has(t.body.toString('base64'))).length,
    0,
    'a relay changed a frame',
  );
  const forAlice = new FrameOpener({ serial: 'CAM-0001', keyPair: alice.keyPair });
  const forMallory = new FrameOpener({ serial: 'CAM-0001', keyPair: mallory.keyPair });
  const opened: FlvTagOut[] = [];
  let wrong = 0;
  for (const t of video) {
    const a = await forAlice.open(t.body);
    assert.ok(a.ok, `bound viewer refused a frame: ${!a.ok && a.code}`);
    if (a.ok) opened.push({ ...t, body: Buffer.from(a.body) });
    if (isSealableVideo(t.body) && (await forMallory.open(t.body)).ok) wrong++;
  }
  assert.equal(forAlice.counters.opened, coded.length, 'every sealed frame opened for the bound viewer');
  assert.equal(wrong, 0, 'a wrong key opened a frame');
  assert.equal(forMallory.sealedForMe, false);
  // A plain decoder: the opened stream is the picture, the relay's copy is flat concealment.
  const plain = await decodeLumaStddev(flvFile(opened), m.stream.ffmpegPath);
  const sealed = await decodeLumaStddev(flvFile(video), m.stream.ffmpegPath);
  assert.ok(plain.length >= 20, `bound viewer decoded ${plain.length} frames`);
  assert.ok(
    plain.every((s) => s > 10),
    `opened frames carry the picture (luma stddev ${Math.min(...plain).toFixed(1)})`,
  );
  assert.equal(
    sealed.filter((s) => s > 4).length,
    0,
    `relay copy decodable frames: ${sealed.map((s) => s.toFixed(1)).join(',')}`,
  );
}

test(
  'sealed push through nginx-rtmp: byte for byte, bound viewer decodes every frame, wrong key none, no key nothing',
  { skip: skipNginx, timeout: 90_000 },
  async () => {
    const relay = `${nginx!.rtmpBase}/CAM-0001`;
    await checkSealed(relay, await sealedThrough(relay, () => pullRtmp(relay), true));
  },
);

test(
  'sealed push through node-media-server: byte for byte, bound viewer decodes every frame, wrong key none, no key nothing',
  { timeout: 90_000 },
  async () => {
    const relay = `${nmsUrls.rtmpBase}/CAM-0001`;
    await checkSealed(
      relay,
      await sealedThrough(relay, () => pullHttpFlv(`${nmsUrls.httpBase}/live/CAM-0001.flv`), false),
    );
  },
);
