/**
 * Sealed against plain push, in one run on the same capture (~2 Mb/s), for bench/stream.ts:
 * - `sealedCpuRatio`: the agent process's CPU while pushing sealed ÷ while pushing plain through
 *   the same in-agent RTMP publisher (hub tap → FLV tags → agent/stream/rtmp → relay): the cost of
 *   sealing itself. Also measured: the pre-sealing plain path (hub tap → `ffmpeg -c copy` →
 *   relay), whose push ffmpeg's CPU is reported beside it, not in the ratio; the sealed push has no
 *   ffmpeg, so `sealedVsFfmpegPushCpuRatio` compares agent + push ffmpeg on both sides.
 * - `sealedAddedLatencyMs`: camera → viewer, median over frames, sealed minus plain. A frame is
 *   timed when the hub hands it to a tap and when a viewer pulling HTTP-FLV from the relay has it
 *   (sealed: after opening it with the viewer's key); frames are matched by plaintext content.
 * - `browserDecryptMbps`: Debian Chromium, the viewer page's real Worker (the bundled
 *   sealed-worker.ts: fetch, FrameOpener with a non-extractable X25519 key pair made in the page,
 *   re-framing) over the capture's own frames sealed to that key: plaintext-in-ciphertext bytes ÷
 *   the time spent inside the Worker's open calls; `browserWorkerMbps` the same bytes over the
 *   Worker's whole wall time (fetch to end). `browserWebCryptoMbps`: bare WebCrypto AES-GCM on the
 *   page thread, for reference. Skipped without chromium.
 * The relay is the dev relay (node-media-server) in its own process.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { StreamService } from '../agent/stream/service.ts';
import { createPushService } from '../agent/push/push.ts';
import { runFfmpeg } from '../agent/stream/ffmpeg-process.ts';
import { silentLogger } from '../agent/log.ts';
import { mapViewerKeys } from '../agent/sealing/viewer-keys.ts';
import { FrameOpener } from '../agent/sealing/opener.ts';
import { encodeTag, FlvTagReader, type FlvTagOut } from '../agent/sealing/flv-tags.ts';
import { isKeyVideo, isSealableVideo } from '../agent/sealing/frame.ts';
import { createFrameSealer } from '../agent/sealing/sealer.ts';
import { openRtmp } from '../agent/push/rtmp/client.ts';
import { sealedWorkerBundle } from '../scripts/dev-cloud/sealed-page.ts';
import { makeViewer } from '../harness/viewer-keys.ts';
import type { GrantFixture } from '../harness/grants-fixture.ts';
import { findBinary } from '../harness/requires.ts';
import http from 'node:http';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN;
const hash = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

function procCpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return (Number(f[11]) + Number(f[12])) / tck;
  } catch {
    return NaN;
  }
}

export interface SealFigures {
  sealedCpuRatio: number;
  agentCpuPercentSealedPush: number;
  agentCpuPercentPlainPush: number;
  pushFfmpegCpuPercentSealed: number;
  pushFfmpegCpuPercentPlain: number;
  sealedLatencyMs: number;
  plainLatencyMs: number;
  sealedAddedLatencyMs: number;
  sealedFrameBytes: number;
  sealedVsFfmpegPushCpuRatio: number;
  agentCpuPercentFfmpegPlainPush: number;
  ffmpegPlainLatencyMs: number;
  browserDecryptMbps: number;
  browserWorkerMbps: number;
  browserWebCryptoMbps: number;
}

export async function measureSealing(o: {
  stream: StreamService;
  f: GrantFixture;
  seconds: number;
  say: (s: string) => void;
}): Promise<SealFigures> {
  const relay = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../harness/relay-child.ts', import.meta.url))],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: relay.stdout! });
  const urls = await new Promise<{ rtmpBase: string; httpBase: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('relay child not ready in 60 s')), 60_000);
    lines.on('line', (l) => {
      const j = JSON.parse(l) as { ready?: boolean; rtmpBase: string; httpBase: string };
      if (j.ready) {
        clearTimeout(t);
        resolve(j);
      }
    });
  });
  const viewer = await makeViewer('bench#1');
  const push = createPushService({
    serial: 'CAM-0001',
    grants: o.f.gate,
    stream: o.stream,
    ffmpegPath: o.stream.ffmpegPath,
    relayAllowList: [],
    clock: o.f.clock,
    logger: silentLogger(),
    viewerKeys: mapViewerKeys({ alice: viewer.key }),
  });
  const release = o.stream.acquire();
  // Tap timestamps: plaintext body hash → when the hub handed it out.
  const tapAt = new Map<string, number>();
  // The capture's own tags (sequence header, frames from the first keyframe), for the browser run.
  const captured: FlvTagOut[] = [];
  let capturedBytes = 0;
  const tapReader = new FlvTagReader(
    () => undefined,
    (t) => {
      if (t.type === 9 && isSealableVideo(t.body)) tapAt.set(hash(t.body), performance.now());
      if (t.type !== 9 || capturedBytes > 4 << 20) return;
      if (isSealableVideo(t.body) && !captured.some((c) => isSealableVideo(c.body)) && !isKeyVideo(t.body))
        return;
      captured.push(t);
      capturedBytes += t.body.length;
    },
  );
  const detachTap = o.stream.attach({ write: (c) => tapReader.push(c), end: () => undefined });

  const pushPlain = () => {
    const input = new PassThrough({ highWaterMark: 1 << 20 });
    let first = true;
    const detach = o.stream.attach({
      write: (c) => {
        if (first && c.length >= 13 && c.toString('latin1', 0, 3) === 'FLV') {
          c = Buffer.from(c);
          c[4] = c[4]! & ~4;
        }
        first = false;
        input.write(c);
      },
      end: () => undefined,
    });
    const run = runFfmpeg({
      ffmpegPath: o.stream.ffmpegPath,
      inputOptions: ['-f', 'flv', '-analyzeduration', '0', '-probesize', '32768'],
      source: input,
      outputOptions: ['-c', 'copy', '-f', 'flv', '-flvflags', 'no_duration_filesize'],
      output: `${urls.rtmpBase}/CAM-0001`,
    });
    return {
      pid: () => run.pid(),
      stop: async () => {
        detach();
        await run.stop();
        input.destroy();
      },
    };
  };

  // Plain through the agent's own publisher: the baseline that differs from sealed push by sealing only.
  const pushPlainNode = () => {
    const client = openRtmp({ url: `${urls.rtmpBase}/CAM-0001`, role: 'publish' });
    let base: number | undefined;
    const reader = new FlvTagReader(
      () => undefined,
      (t) => {
        if (t.type !== 9 && t.type !== 18) return;
        const raw = ((t.ts[3]! << 24) | t.ts.readUIntBE(0, 3)) >>> 0;
        if (t.type === 9 && isSealableVideo(t.body)) base ??= raw;
        client.sendTag({
          type: t.type,
          timestamp: base === undefined ? 0 : Math.max(0, raw - base),
          body: t.body,
        });
      },
    );
    const detach = o.stream.attach({ write: (c) => reader.push(c), end: () => undefined });
    return {
      pid: () => undefined,
      stop: async () => {
        detach();
        await client.close();
      },
    };
  };

  const cpuWindow = async (pid: () => number | undefined) => {
    const c0 = process.cpuUsage();
    const f0 = procCpuSeconds(pid());
    const t0 = performance.now();
    await sleep(o.seconds * 1000);
    const wall = performance.now() - t0;
    const u = process.cpuUsage(c0);
    return {
      agent: ((u.user + u.system) / 1000 / wall) * 100,
      ff: (((procCpuSeconds(pid()) - f0) * 1000) / wall) * 100,
    };
  };

  const latency = async (sealed: boolean) => {
    const opener = new FrameOpener({ serial: 'CAM-0001', keyPair: viewer.keyPair });
    const lat: number[] = [];
    const sizes: number[] = [];
    const pending: Promise<void>[] = [];
    const reader = new FlvTagReader(
      () => undefined,
      (t) => {
        if (t.type !== 9 || !isSealableVideo(t.body)) return;
        const at = performance.now();
        if (!sealed) {
          const tap = tapAt.get(hash(t.body));
          if (tap !== undefined) lat.push(at - tap);
          return;
        }
        sizes.push(t.body.length);
        pending.push(
          opener.open(t.body).then((r) => {
            if (!r.ok) return;
            const tap = tapAt.get(hash(r.body));
            if (tap !== undefined) lat.push(performance.now() - tap);
          }),
        );
      },
    );
    const req = http.get(`${urls.httpBase}/live/CAM-0001.flv`, (res) =>
      res.on('data', (d: Buffer) => reader.push(d)),
    );
    req.on('error', () => undefined);
    await sleep(Math.max(3, o.seconds / 2) * 1000);
    req.destroy();
    await Promise.all(pending);
    return { ms: median(lat.slice(5)), n: lat.length, size: median(sizes) };
  };

  // Plain first, then sealed, each: settle, CPU window, latency window.
  const ffPlain = pushPlain();
  await sleep(2500);
  const ffPlainCpu = await cpuWindow(ffPlain.pid);
  const ffPlainLat = await latency(false);
  await ffPlain.stop();
  await sleep(1500);

  const plain = pushPlainNode();
  await sleep(2500);
  const plainCpu = await cpuWindow(plain.pid);
  plainCpu.ff = 0;
  const plainLat = await latency(false);
  await plain.stop();
  await sleep(1500);

  const r = await push.start(o.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 300 }));
  if (!r.ok) throw new Error(`sealed push refused: ${r.reason}`);
  await sleep(2500);
  // No push ffmpeg on the sealed side: the agent publishes RTMP itself.
  const sealedCpu = await cpuWindow(() => undefined);
  sealedCpu.ff = 0;
  const sealedLat = await latency(true);
  await push.close();

  detachTap();
  release();
  relay.stdin?.end();
  await Promise.race([once(relay, 'exit'), sleep(3000)]);
  relay.kill('SIGKILL');

  const browserWebCryptoMbps = await browserDecrypt(sealedLat.size || 16_000, o.say);
  const worker = await browserWorker(captured, o.say);
  const fig: SealFigures = {
    sealedCpuRatio: sealedCpu.agent / plainCpu.agent,
    agentCpuPercentSealedPush: sealedCpu.agent,
    agentCpuPercentPlainPush: plainCpu.agent,
    pushFfmpegCpuPercentSealed: sealedCpu.ff,
    pushFfmpegCpuPercentPlain: ffPlainCpu.ff,
    agentCpuPercentFfmpegPlainPush: ffPlainCpu.agent,
    ffmpegPlainLatencyMs: ffPlainLat.ms,
    sealedLatencyMs: sealedLat.ms,
    plainLatencyMs: plainLat.ms,
    sealedAddedLatencyMs: sealedLat.ms - plainLat.ms,
    sealedFrameBytes: sealedLat.size,
    sealedVsFfmpegPushCpuRatio: sealedCpu.agent / (ffPlainCpu.agent + ffPlainCpu.ff),
    browserDecryptMbps: worker.decryptMbps,
    browserWorkerMbps: worker.wallMbps,
    browserWebCryptoMbps,
  };
  o.say(
    `sealed push: agent CPU ${fig.agentCpuPercentSealedPush.toFixed(2)} % vs plain ${fig.agentCpuPercentPlainPush.toFixed(2)} % of one core → sealedCpuRatio ${fig.sealedCpuRatio.toFixed(3)} (≤ 1.15); pre-sealing ffmpeg push: agent ${fig.agentCpuPercentFfmpegPlainPush.toFixed(2)} % + push ffmpeg ${fig.pushFfmpegCpuPercentPlain.toFixed(1)} % → sealed / that ${fig.sealedVsFfmpegPushCpuRatio.toFixed(3)}`,
  );
  o.say(
    `camera → viewer through the relay: sealed ${fig.sealedLatencyMs.toFixed(1)} ms (n=${sealedLat.n}) vs plain ${fig.plainLatencyMs.toFixed(1)} ms (n=${plainLat.n}; plain via ffmpeg ${fig.ffmpegPlainLatencyMs.toFixed(1)} ms) → sealedAddedLatencyMs ${fig.sealedAddedLatencyMs.toFixed(1)} (≤ 30); page Worker decrypt ${fig.browserDecryptMbps.toFixed(1)} Mb/s (≥ 8), whole Worker ${fig.browserWorkerMbps.toFixed(1)} Mb/s, bare WebCrypto ${browserWebCryptoMbps.toFixed(1)} Mb/s at ${fig.sealedFrameBytes} B/frame`,
  );
  return fig;
}

/** WebCrypto AES-GCM in Chromium, one frame at a time (as the Worker), frames of `size` bytes. */
async function browserDecrypt(size: number, say: (s: string) => void): Promise<number> {
  if (!findBinary('chromium')) {
    say('browserDecryptMbps: skipped (needs chromium)');
    return NaN;
  }
  const { launchBrowser } = await import('../harness/browser.ts');
  const b = await launchBrowser();
  // WebCrypto needs a secure context: a loopback http origin is one, about:blank is not.
  const srv = http.createServer((_q, res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>bench</title>'),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    await b.page.goto(`http://127.0.0.1:${(srv.address() as { port: number }).port}/`);
    return await b.page.evaluate(async (n: number) => {
      const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 128 }, false, [
        'encrypt',
        'decrypt',
      ]);
      const frames: { iv: Uint8Array; ct: ArrayBuffer }[] = [];
      for (let i = 0; i < 60; i++) {
        const iv = new Uint8Array(12);
        iv[11] = i;
        const pt = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536)));
        frames.push({ iv, ct: await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, pt) });
      }
      let bytes = 0;
      const t0 = performance.now();
      for (let round = 0; round < 20; round++)
        for (const f of frames) {
          const out = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: f.iv as BufferSource }, key, f.ct);
          bytes += out.byteLength;
        }
      return (bytes * 8) / 1e6 / ((performance.now() - t0) / 1000);
    }, size);
  } finally {
    await b.close();
    srv.close();
  }
}

/**
 * The viewer page's real Worker in Chromium: the page makes its X25519 key pair (non-extractable),
 * the capture's frames are sealed to its public key here (repeated to ~8 MB, fresh counters), and
 * the Worker fetches, opens and re-frames them as fast as it can.
 */
async function browserWorker(
  captured: FlvTagOut[],
  say: (s: string) => void,
): Promise<{ decryptMbps: number; wallMbps: number }> {
  if (!findBinary('chromium') || !captured.some((t) => isSealableVideo(t.body))) {
    say('browserDecryptMbps: skipped (needs chromium and captured frames)');
    return { decryptMbps: NaN, wallMbps: NaN };
  }
  const { launchBrowser } = await import('../harness/browser.ts');
  const b = await launchBrowser();
  let flv = Buffer.alloc(0);
  const srv = http.createServer((q, res) => {
    if (q.url === '/w.js')
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(sealedWorkerBundle());
    else if (q.url === '/s.flv') res.writeHead(200, { 'content-type': 'video/x-flv' }).end(flv);
    else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>bench</title>');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    await b.page.goto(`http://127.0.0.1:${(srv.address() as { port: number }).port}/`);
    const jwk = (await b.page.evaluate(async () => {
      const kp = (await crypto.subtle.generateKey({ name: 'X25519' }, false, [
        'deriveBits',
      ])) as CryptoKeyPair;
      (globalThis as unknown as { kp: CryptoKeyPair }).kp = kp;
      return crypto.subtle.exportKey('jwk', kp.publicKey);
    })) as JsonWebKey;
    const sealer = await createFrameSealer({ serial: 'CAM-0001', viewer: { kid: 'page#1', publicKey: jwk } });
    const parts: Buffer[] = [Buffer.from([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 9, 0, 0, 0, 0])];
    let plainBytes = 0;
    const seq = captured.filter((t) => !isSealableVideo(t.body));
    const frames = captured.filter((t) => isSealableVideo(t.body));
    for (const t of seq) parts.push(encodeTag(9, t.ts, t.body));
    while (plainBytes < 8 << 20)
      for (const t of frames) {
        const body = sealer.sealVideo(t.body);
        plainBytes += body.length;
        parts.push(encodeTag(9, t.ts, body));
      }
    flv = Buffer.concat(parts);
    const r = (await b.page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker('/w.js');
          const t0 = performance.now();
          let last: { opened: number; refused: number; decryptMs: number; decryptBytes: number } | undefined;
          w.onmessage = (ev: MessageEvent) => {
            const m = ev.data as { type: string; msg?: string };
            if (m.type === 'counters') last = m as unknown as typeof last;
            if (m.type === 'error') reject(new Error(m.msg));
            if (m.type === 'end') resolve({ ...last!, wallMs: performance.now() - t0 });
          };
          w.postMessage({
            type: 'init',
            url: '/s.flv',
            serial: 'CAM-0001',
            keyPair: (globalThis as unknown as { kp: CryptoKeyPair }).kp,
          });
        }),
    )) as { opened: number; refused: number; decryptMs: number; decryptBytes: number; wallMs: number };
    if (!r.opened || r.refused) throw new Error(`page Worker opened ${r.opened}, refused ${r.refused}`);
    say(
      `page Worker: ${r.opened} frames, ${(r.decryptBytes / 1e6).toFixed(1)} MB in ${r.decryptMs.toFixed(0)} ms of opening, ${r.wallMs.toFixed(0)} ms wall`,
    );
    return {
      decryptMbps: (r.decryptBytes * 8) / 1e6 / (r.decryptMs / 1000),
      wallMbps: (r.decryptBytes * 8) / 1e6 / (r.wallMs / 1000),
    };
  } finally {
    await b.close();
    srv.close();
  }
}
