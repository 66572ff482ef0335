/**
 * Stream figures on this machine with real parts (testpattern → ffmpeg → in-process hub → gate):
 * - warm join: request with a fresh grant → first keyframe tag, through the gate vs. the same hub
 *   served by a bare loopback HTTP endpoint without any check (same transport, no grant), and the
 *   in-process attach floor; median and p90 over N joins, ratio gate / bare. Beside them the same
 *   gate with every accept's flush on libuv's pool (the design before the flush moved onto the loop
 *   while the disk is fast; `warmJoinPoolFlushMs`). `flushMs` is unchanged: write + fdatasync on the
 *   loop is exactly the gate's flush now. The grant decision alone (`decisionMs`) is timed 15 ms
 *   apart, as lone joins are (back to back, its flushes would be a burst's, on the pool), and so is
 *   the pure grant check inside it (`verifyMs`: parse, header, key, signature, claims, no I/O),
 *   which every verified join pays on top of the floor; `gateOverVerifiedFloor` = gate ÷ (bare +
 *   flush + check) shows what the gate's own work adds beyond both (for reading; the goal is
 *   `gateOverFloor`).
 * - cold start (on demand, capture idle → first keyframe through the gate), 9 of them: ffmpeg's own
 *   spawn → keyframe varies by ±50 ms from run to run here, and a median of 5 moved the ratio by 0.3.
 * - agent CPU (this process: gate + hub + grant checks; not ffmpeg, measured apart) per viewer at
 *   ~2 Mb/s with 1, 10 and 20 viewers, next to the same hub served bare (no checks), the viewers in
 *   a child process.
 * - the physical floors measured in the same run: `flushMs` (append one accept-line-sized line to a
 *   file in the grant state directory and fdatasync it, interleaved with the joins) and
 *   `ffmpegFirstKeyframeMs` (the capture's own ffmpeg arguments writing FLV to a pipe, spawn → first
 *   keyframe tag, interleaved with the cold starts).
 * - sealed against plain push (bench/_seal.ts): sealedCpuRatio (+ sealedVsFfmpegPushCpuRatio), sealedAddedLatencyMs, browserDecryptMbps (the page Worker; + browserWorkerMbps, browserWebCryptoMbps).
 * Targets (issue 18): gateOverFloor = gate ÷ (bare + flush) ≤ 1.2; coldOverFfmpeg ≤ 1.2.
 * Targets (issue 15): sealedCpuRatio ≤ 1.15, sealedAddedLatencyMs ≤ 30, browserDecryptMbps ≥ 8.
 * Usage: npx tsx bench/stream.ts [--json FILE]   (BENCH_JOINS, BENCH_COLD, BENCH_CPU_SECONDS, BENCH_KBPS, BENCH_SEAL=0)
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../agent/config/load.ts';
import { silentLogger } from '../agent/log.ts';
import { createStreamService, type StreamService } from '../agent/stream/service.ts';
import { createPrivacyState } from '../agent/privacy/state.ts';
import { createGate } from '../agent/gate/gate.ts';
import { createGrantGate } from '../agent/grants/grant-gate.ts';
import { verifyGrant, type GrantPolicy, type GrantState } from '../agent/grants/verify.ts';
import { LOOP_FLUSH_IDLE_MS } from '../agent/audit/decision-log.ts';
import { createTestPatternDriver } from '../drivers/camera/testpattern.ts';
import { createNoSwitch } from '../drivers/privacy/none.ts';
import { makeGrantFixture, SERIAL } from '../harness/grants-fixture.ts';
import { FlvClient, FlvParser } from '../harness/flv-client.ts';
import { resolveFfmpegPath } from '../agent/stream/ffmpeg-path.ts';
import { splitInput } from '../agent/stream/ffmpeg-process.ts';
import { writeFigures } from './_json.ts';
import { measureSealing } from './_seal.ts';
import { reached } from '../harness/wait.ts';

const { values: args } = parseArgs({ options: { json: { type: 'string' } } });
const STARTED = Date.now();

const JOINS = Number(process.env.BENCH_JOINS ?? 45);
const COLD = Number(process.env.BENCH_COLD ?? 9);
const CPU_SECONDS = Number(process.env.BENCH_CPU_SECONDS ?? 10);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;
const fmt = (x: number) => x.toFixed(1);

function procCpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return (Number(f[11]) + Number(f[12])) / tck;
  } catch {
    return NaN;
  }
}

/** One durable flush of one accept-sized line in `dir`: the physical floor of an audited accept. */
function makeFlusher(dir: string, lineBytes: number): { once(): number; close(): void } {
  const fd = openSync(join(dir, 'bench-flush.log'), 'a');
  const line = Buffer.alloc(lineBytes, 0x61);
  line[lineBytes - 1] = 0x0a;
  return {
    once() {
      const t0 = performance.now();
      writeSync(fd, line);
      fdatasyncSync(fd);
      return performance.now() - t0;
    },
    close: () => closeSync(fd),
  };
}

/** ffmpeg alone, same arguments as the capture supervisor, FLV to a pipe: spawn → first keyframe. */
async function ffmpegFirstKeyframe(
  ffmpegPath: string,
  args: { input: string[]; video: string[] },
): Promise<number> {
  const { options, source } = splitInput(args.input);
  const t0 = performance.now();
  const child = spawn(
    ffmpegPath,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      ...options,
      '-i',
      source,
      ...args.video,
      '-an',
      '-f',
      'flv',
      '-flvflags',
      'no_duration_filesize',
      'pipe:1',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('ffmpeg gave no keyframe within 15 s')), 15_000);
      const p = new FlvParser(t0, (t) => {
        if (t.type === 'video' && t.frameType === 1 && t.avcPacketType === 1) {
          clearTimeout(timer);
          resolve(t.at);
        }
      });
      child.stdout.on('data', (b: Buffer) => p.push(b));
      child.on('exit', () => reject(new Error('ffmpeg exited before a keyframe')));
    });
  } finally {
    child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const f = await makeGrantFixture();
  f.clock.now = () => Date.now();
  const { config } = loadConfig(undefined, {});
  const logger = silentLogger();
  const privacy = createPrivacyState({
    initial: false,
    hardware: createNoSwitch(),
    serial: SERIAL,
    clock: f.clock,
    logger,
  });
  const streamCfg = { ...config.stream, mode: 'on-demand' as 'on-demand' | 'always', idleStopSeconds: 0 };
  // ~2 Mb/s: 640x360@15 with libx264 at a 2000 kb/s cap (the test pattern compresses well, so the
  // measured rate is printed rather than assumed).
  const camera = {
    ...config.camera,
    width: 640,
    height: 360,
    fps: 15,
    gopSeconds: 1,
    bitrateKbps: Number(process.env.BENCH_KBPS ?? 2000),
  };
  const stream: StreamService = createStreamService({
    serial: SERIAL,
    stream: streamCfg,
    camera,
    logger,
    privacy,
    cameraDriver: createTestPatternDriver({ hasDrawtext: false }),
  });
  await stream.start();
  /** One gate on the shared stream, plain HTTP on loopback; only its grant decision differs. */
  const benchGate = async (grants: Parameters<typeof createGate>[0]['grants']) => {
    const g = createGate({
      serial: SERIAL,
      config: {
        ...config.gate,
        host: '127.0.0.1',
        port: 0,
        tls: false,
        maxViewers: 64,
        refusalRateLimit: { perMinute: 10_000 },
      },
      grants,
      stream,
      privacy,
      clock: f.clock,
      logger,
    });
    await g.listen();
    return g;
  };
  const gate = await benchGate(f.gate);
  const gateUrl = `${gate.url}/live/${SERIAL}.flv`;
  // The same gate code with a decision that accepts at once (bench only): isolates the gate's own
  // HTTP/session work from the grant decision.
  let fakeJti = 0;
  const stubGrants = {
    decide: async () => ({
      ok: true as const,
      claims: {
        iss: 'bench',
        aud: SERIAL,
        sub: 'bench',
        jti: `b${++fakeJti}`,
        iat: 0,
        exp: Math.floor(Date.now() / 1000) + 60,
        scope: 'live',
      },
    }),
  };
  const stubGate = await benchGate(stubGrants);
  const stubUrl = `${stubGate.url}/live/${SERIAL}.flv`;
  // The previous design beside it: the same grant gate (its own state dir) with every accept's
  // flush on libuv's pool (auditLoopFlushBudgetMs 0) instead of on the loop.
  const fPool = await makeGrantFixture();
  fPool.clock.now = () => Date.now();
  fPool.gate.close();
  const poolGrants = createGrantGate({
    serial: SERIAL,
    grants: config.grants,
    relayAllowList: [],
    paths: fPool.paths,
    clock: fPool.clock,
    logger,
    events: fPool.events,
    isPrivacyOn: () => false,
    auditLoopFlushBudgetMs: 0,
  });
  const poolGate = await benchGate(poolGrants);
  const poolUrl = `${poolGate.url}/live/${SERIAL}.flv`;
  // The same hub served with no check at all: the baseline for what the gate adds.
  const bare = createServer((req, res) => {
    const release = stream.acquire();
    // Same response shape as the gate's, so only the checks differ.
    res.writeHead(200, {
      'content-type': 'video/x-flv',
      'cache-control': 'no-store',
      connection: 'close',
      'x-content-type-options': 'nosniff',
    });
    res.flushHeaders();
    const detach = stream.attach({ write: (b) => res.write(b), end: () => res.end() });
    req.socket.on('close', () => (detach(), release()));
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/live/${SERIAL}.flv`;
  const out: string[] = [];
  const say = (s: string) => {
    out.push(s);
    process.stdout.write(`${s}\n`);
  };
  say(
    `grant state dir (audit log, replay cache; accepts are fsync'd): ${f.dir} — set TMPDIR to move it; load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)} on ${(await import('node:os')).cpus().length} cores`,
  );
  say(
    `camera: testpattern ${camera.width}x${camera.height}@${camera.fps} libx264 cap ${camera.bitrateKbps} kb/s, GOP ${camera.gopSeconds} s`,
  );

  // Cold start first (on demand, idle pipeline), interleaved with ffmpeg alone on the same arguments.
  const ffmpegPath = resolveFfmpegPath({ configPath: streamCfg.ffmpegPath }).path;
  const ffArgs = await createTestPatternDriver({ hasDrawtext: false }).prepare({
    device: camera.device,
    width: camera.width,
    height: camera.height,
    fps: camera.fps,
    gopSeconds: camera.gopSeconds,
    bitrateKbps: camera.bitrateKbps,
    label: camera.label,
    color: camera.color,
  });
  const cold: number[] = [];
  const ffFirst: number[] = [];
  for (let i = 0; i < COLD; i++) {
    ffFirst.push(await ffmpegFirstKeyframe(ffmpegPath, ffArgs));
    await reached(() => !stream.status().capture.running && !stream.hub.isLive(), 10_000, { stepMs: 10 });
    await sleep(300);
    const c = FlvClient.http({
      url: gateUrl,
      headers: { authorization: `Bearer ${f.mint({ ttlSeconds: 60 })}` },
    });
    const r = await c.waitForKeyframe(15_000);
    cold.push(r.firstKeyframeAt!);
    c.close();
  }
  say(
    `cold start (capture idle → first keyframe through the gate), n=${COLD}: median ${fmt(median(cold))} ms, max ${fmt(Math.max(...cold))} ms`,
  );
  say(
    `  ffmpeg alone, same arguments, FLV to a pipe (spawn → first keyframe), n=${COLD}: median ${fmt(median(ffFirst))} ms; ratio cold / ffmpeg ${(median(cold) / median(ffFirst)).toFixed(2)} (target ≤ 1.2)`,
  );

  // Warm joins: keep one holder so capture stays up; interleave gate / bare / in-process.
  const holder = stream.acquire();
  await reached(() => stream.hub.isLive(), 15_000, { stepMs: 10 });
  await sleep(1500);
  const viaGate: number[] = [];
  const viaBare: number[] = [];
  const viaStub: number[] = [];
  const viaPool: number[] = [];
  const inProc: number[] = [];
  // The accept line's size, read from the audit log the gate just wrote (cold starts accepted grants).
  const auditLines = readFileSync(f.paths.auditLog, 'utf8').trimEnd().split('\n');
  const acceptBytes = Buffer.byteLength(auditLines[auditLines.length - 1] ?? '') + 1;
  const flusher = makeFlusher(f.paths.auditDir, Math.max(acceptBytes, 64));
  const flush: number[] = [];
  const joinVia = async (url: string, headers: Record<string, string>) => {
    const c = FlvClient.http({ url, headers });
    const at = (await c.waitForKeyframe(5000)).firstKeyframeAt!;
    c.close();
    return at;
  };
  const paths: Array<() => Promise<void>> = [
    async () => {
      flush.push(flusher.once());
      viaGate.push(await joinVia(gateUrl, { authorization: `Bearer ${f.mint({ ttlSeconds: 60 })}` }));
    },
    async () => void viaBare.push(await joinVia(bareUrl, {})),
    async () => void viaStub.push(await joinVia(stubUrl, { authorization: 'Bearer x.y.z' })),
    async () =>
      void viaPool.push(
        await joinVia(poolUrl, { authorization: `Bearer ${fPool.mint({ ttlSeconds: 60 })}` }),
      ),
  ];
  for (let i = 0; i < JOINS; i++) {
    // The order rotates each round: no path always comes first after the pause (a cold wake-up of
    // this VM's CPU) or right after another path's close.
    for (let k = 0; k < paths.length; k++) await paths[(i + k) % paths.length]!();
    const t0 = performance.now();
    let at = 0;
    const p = new FlvParser(t0, (t) => {
      if (!at && t.type === 'video' && t.frameType === 1 && t.avcPacketType === 1) at = t.at;
    });
    const detach = stream.attach({ write: (buf) => p.push(buf), end: () => undefined });
    await reached(() => at > 0, 5000, { stepMs: 10 });
    detach();
    inProc.push(at);
    await sleep(30);
  }
  say(`warm join (request → first keyframe), n=${JOINS}:`);
  say(
    `  through the gate (grant verify + audit + session): median ${fmt(median(viaGate))} ms, p90 ${fmt(p90(viaGate))} ms`,
  );
  say(
    `  same hub, bare loopback HTTP, no check:           median ${fmt(median(viaBare))} ms, p90 ${fmt(p90(viaBare))} ms`,
  );
  say(
    `  gate code, decision stubbed to accept (bench only): median ${fmt(median(viaStub))} ms, p90 ${fmt(p90(viaStub))} ms`,
  );
  say(
    `  gate, accept flush on libuv's pool (previous design): median ${fmt(median(viaPool))} ms, p90 ${fmt(p90(viaPool))} ms`,
  );
  say(`  in-process attach (floor):                        median ${fmt(median(inProc))} ms`);
  flusher.close();
  const floor = median(viaBare) + median(flush);
  say(
    `  one durable flush of a ${acceptBytes}-byte line in the grant state dir (fdatasync): median ${fmt(median(flush))} ms, p90 ${fmt(p90(flush))} ms`,
  );
  say(
    `  ratio gate / bare (medians): ${(median(viaGate) / median(viaBare)).toFixed(2)}; ratio gate / floor (bare + flush): ${(median(viaGate) / floor).toFixed(2)} (target ≤ 1.2; gate median target ≤ 5 ms quiet, ≤ 20 ms loaded)`,
  );
  // Viewers joining at once (BURST per round): their accepts share flushes (group commit), and no
  // flush blocks the event loop while the others' bytes go out.
  const BURST = 8;
  const burstGate: number[] = [];
  const burstBare: number[] = [];
  for (let r = 0; r < 5; r++) {
    const grants = Array.from({ length: BURST }, () => f.mint({ ttlSeconds: 60 }));
    burstGate.push(
      ...(await Promise.all(grants.map((g) => joinVia(gateUrl, { authorization: `Bearer ${g}` })))),
    );
    burstBare.push(...(await Promise.all(grants.map(() => joinVia(bareUrl, {})))));
    await sleep(100);
  }
  say(
    `  ${BURST} viewers joining at once (5 rounds): through the gate median ${fmt(median(burstGate))} ms, p90 ${fmt(p90(burstGate))} ms; bare median ${fmt(median(burstBare))} ms; ratio ${(median(burstGate) / median(burstBare)).toFixed(2)}`,
  );
  // Where the difference goes: one grant decision alone (verify + durable audit line + replay entry),
  // and beside it the pure check every verified join must make whatever the gate's design (parse,
  // header, key, the signature, claims: `verifyGrant` with no I/O), interleaved, each apart like the
  // joins (back to back, decisions would be a burst, whose flushes go to the pool, and the check
  // would run hot, which no lone join does).
  const decide: number[] = [];
  const check: number[] = [];
  const policy: GrantPolicy = {
    serial: SERIAL,
    issuer: config.grants.issuer,
    algorithms: config.grants.algorithms,
    maxLifetimeSeconds: config.grants.maxLifetimeSeconds,
    clockToleranceSeconds: config.grants.clockToleranceSeconds,
    maxTokenBytes: config.grants.maxTokenBytes,
    buildTimeMs: 0,
    relayAllowList: [],
  };
  const trusted: GrantState = {
    issuerKeys: f.gate.trust.issuerKeys,
    isPrivacyOn: () => false,
    isClaimed: () => true,
    isBound: () => true,
    isReplayed: () => false,
  };
  for (let i = 0; i < JOINS; i++) {
    const tok = f.mint({ ttlSeconds: 60 });
    await sleep(LOOP_FLUSH_IDLE_MS + 5);
    let t0 = performance.now();
    const checked = verifyGrant(tok, { source: 'bench', purpose: 'view' }, policy, trusted, Date.now());
    check.push(performance.now() - t0);
    if (!checked.ok) throw new Error(`bench grant refused by verifyGrant: ${checked.reason}`);
    await sleep(LOOP_FLUSH_IDLE_MS + 5);
    t0 = performance.now();
    await f.gate.decide(tok, { source: 'bench', purpose: 'view' });
    decide.push(performance.now() - t0);
  }
  say(
    `  grant decision alone (signature, claims, fsync'd audit line, replay entry): median ${fmt(median(decide))} ms, p90 ${fmt(p90(decide))} ms`,
  );
  say(
    `  of it the grant check alone (parse, header, key, signature, claims; no I/O): median ${median(check).toFixed(2)} ms, p90 ${p90(check).toFixed(2)} ms`,
  );
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const gateOverFloor = median(viaGate) / floor;
  // Not the floor: that floor plus the grant check, which no verified join can skip. What
  // is left above it is the gate's own work (HTTP, session, the line, the end-of-turn defer).
  const gateOverVerifiedFloor = median(viaGate) / (floor + median(check));
  say(
    `  ratio gate / (floor + grant check ${median(check).toFixed(2)} ms): ${gateOverVerifiedFloor.toFixed(2)} (for reading only; the goal is gate / floor)`,
  );
  const coldOverFfmpeg = median(cold) / median(ffFirst);
  say(
    `verdict: warm join ${fmt(median(viaGate))} ms (≤ 20: ${met(median(viaGate) <= 20)}), gate/floor ${gateOverFloor.toFixed(2)} (≤ 1.2: ${met(gateOverFloor <= 1.2)}), cold/ffmpeg ${coldOverFfmpeg.toFixed(2)} (≤ 1.2: ${met(coldOverFfmpeg <= 1.2)}); grant decision ${fmt(median(decide))} ms of it`,
  );
  const figures: Record<string, number> = {
    warmJoinMs: median(viaGate),
    bareJoinMs: median(viaBare),
    flushMs: median(flush),
    gateOverBare: median(viaGate) / median(viaBare),
    gateOverFloor,
    coldStartMs: median(cold),
    ffmpegFirstKeyframeMs: median(ffFirst),
    coldOverFfmpeg,
    decisionMs: median(decide),
    verifyMs: median(check),
    gateOverVerifiedFloor,
    warmJoinPoolFlushMs: median(viaPool),
    burstGateJoinMs: median(burstGate),
    burstBareJoinMs: median(burstBare),
  };

  // Agent CPU per viewer.
  const ffPid = stream.capturePid();
  const viewersScript = fileURLToPath(new URL('./_stream-viewers.ts', import.meta.url));
  const idleCpu0 = process.cpuUsage();
  const idleT0 = performance.now();
  await sleep(CPU_SECONDS * 1000);
  const idle = process.cpuUsage(idleCpu0);
  const idlePct = ((idle.user + idle.system) / 1000 / (performance.now() - idleT0)) * 100;
  say(`agent CPU, capture running, 0 viewers: ${idlePct.toFixed(2)} % of one core`);
  // Each viewer count through the gate, then through the bare endpoint on the same hub (the
  // baseline: the hub serving directly, no grant, no session table), same viewer child.
  const measure = async (n: number, url: string) => {
    const grants = Array.from({ length: n }, () => f.mint({ ttlSeconds: 120 }));
    let cpu0 = process.cpuUsage();
    let ff0 = ffPid ? procCpuSeconds(ffPid) : NaN;
    let t0 = performance.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', viewersScript, JSON.stringify({ url, grants, seconds: CPU_SECONDS })],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let text = '';
    let windowOpen = false;
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (!windowOpen && text.startsWith('go\n')) {
        // The CPU window starts with the first media byte at the viewers.
        windowOpen = true;
        cpu0 = process.cpuUsage();
        ff0 = ffPid ? procCpuSeconds(ffPid) : NaN;
        t0 = performance.now();
        text = text.slice(3);
      }
    });
    await new Promise((r) => child.on('exit', r));
    const wallMs = performance.now() - t0;
    const used = process.cpuUsage(cpu0);
    const pct = ((used.user + used.system) / 1000 / wallMs) * 100;
    const ff = ffPid ? (((procCpuSeconds(ffPid) - ff0) * 1000) / wallMs) * 100 : NaN;
    const r = JSON.parse(text.trim() || '{}') as { bytes?: number; seconds?: number; okViewers?: number };
    const mbps = ((r.bytes ?? 0) * 8) / (r.seconds || wallMs / 1000) / 1e6 / n;
    return { pct, ff, mbps, ok: r.okViewers ?? 0 };
  };
  for (const n of [1, 10, 20]) {
    const g = await measure(n, gateUrl);
    const b = await measure(n, bareUrl);
    figures[`cpuPercentGate${n}`] = g.pct;
    figures[`cpuPercentBare${n}`] = b.pct;
    say(
      `agent CPU with ${n} viewer(s): gate ${g.pct.toFixed(2)} % of one core (${((g.pct - idlePct) / n).toFixed(2)} % per viewer over idle), bare hub ${b.pct.toFixed(2)} % (${((b.pct - idlePct) / n).toFixed(2)} % per viewer); ratio ${(g.pct / b.pct).toFixed(2)}; ${g.ok}/${n} admitted; ${g.mbps.toFixed(2)} Mb/s per viewer; ffmpeg ${g.ff.toFixed(1)} % (not the agent)`,
    );
  }
  holder();
  // Sealed against plain push on the same capture (bench/_seal.ts).
  if (process.env.BENCH_SEAL !== '0') {
    const seal = await measureSealing({ stream, f, seconds: CPU_SECONDS, say });
    Object.assign(figures, seal);
  }
  await gate.close();
  await stubGate.close();
  await poolGate.close();
  poolGrants.close();
  fPool.cleanup();
  bare.close();
  await stream.stop();
  f.cleanup();
  writeFigures(args.json, 'stream', STARTED, figures);
}

await main();
process.exit(0);
