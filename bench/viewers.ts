/**
 * Memory per extra viewer (issue 18: ≤ 1 MB): the whole agent COMPILED as a device runs it (as in
 * bench/idle.ts: the shipped V8 flags and MALLOC_* env, cloud link up over mTLS to a real
 * mosquitto), capture running (`stream.mode: always`, test pattern 640x360@15, ~2 Mb/s), the gate
 * over HTTPS with the device certificate; its RSS with 0, 1, 5, 10 and 20 viewers attached through
 * the gate, each with its own grant and draining its bytes (bench/_viewers-hold.ts, another
 * process). `perViewerMb` is the least-squares slope of RSS over the viewer count. Baseline in the
 * same run, same node flags: bare node-media-server (its package entry, HTTPS-FLV, no gate, no
 * grants, bench/_nms-bare.mjs) fed by the same ffmpeg arguments over RTMP: `baselinePerViewerMb`.
 * RSS per step: median of samples every 250 ms over `--sample` s, after `--settle` s.
 * Usage: npx tsx bench/viewers.ts [--json FILE] [--steps 0,1,5,10,20] [--settle 4] [--sample 4]
 *        [--no-build] [--node-flags shipped|none|"FLAGS"]
 * Must never leave a child behind (agent, hub, ffmpeg, viewers: all closed in finally).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { configSchema } from '../agent/config/schema.ts';
import { resolveFfmpegPath } from '../agent/stream/ffmpeg-path.ts';
import { freePort } from '../scripts/dev-cloud/broker-mosquitto.ts';
import { splitInput } from '../agent/stream/ffmpeg-process.ts';
import { createTestPatternDriver } from '../drivers/camera/testpattern.ts';
import { mintGrant } from '../scripts/dev-cloud/mint.ts';
import { startFleetBackend, type FleetBackend } from '../harness/fleet/backend.ts';
import { benchCamera, buildCompiledAgent } from '../harness/fleet/bench-camera.ts';
import { runAgentChild, stopAgentChild } from '../harness/fleet/full-agent.ts';
import { makeKeyPool } from '../harness/pki.ts';
import { writeFigures } from './_json.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '0,1,5,10,20' },
    settle: { type: 'string', default: '3' },
    sample: { type: 'string', default: '5' },
    'node-flags': { type: 'string', default: 'shipped' },
    'no-build': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const STARTED = Date.now();
const STEPS = values.steps.split(',').map(Number);
const SETTLE_S = Number(values.settle);
const SAMPLE_S = Number(values.sample);
const GOAL_MB = 1;
const CAMERA = { driver: 'testpattern', width: 640, height: 360, fps: 15, gopSeconds: 1, bitrateKbps: 2000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => ((num += (x - mx) * (ys[i]! - my)), (den += (x - mx) ** 2)));
  return den ? num / den : NaN;
}

const unit = () => readFileSync(new URL('../packaging/lenscap.service', import.meta.url), 'utf8');
/** The V8 flags between @NODE@ and the app in the shipped systemd unit (as bench/idle.ts reads them). */
function shippedNodeFlags(): string {
  return /^ExecStart=@NODE@ (.*?)\s*\/opt\/lenscap\/bin\/lenscap\.js /m.exec(unit())?.[1] ?? '';
}
function shippedEnv(): Record<string, string> {
  const line = /^Environment=(MALLOC_.*)$/m.exec(unit())?.[1] ?? '';
  return Object.fromEntries(
    line
      .split(/\s+/)
      .filter(Boolean)
      .map((kv) => kv.split('=') as [string, string]),
  );
}

/** The viewer-holding child: `add(url, grants)` resolves with {open, ok} once they all got bytes. */
function startViewers(): {
  add(url: string, grants: string[]): Promise<{ open: number; ok: number }>;
  /** Closes the k viewers opened last. */
  drop(k: number): Promise<{ open: number; ok: number }>;
  close(): void;
  child: ChildProcess;
} {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./_viewers-hold.ts', import.meta.url).pathname],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(v: { open: number; ok: number }) => void> = [];
  lines.on('line', (l) => waiting.shift()?.(JSON.parse(l) as { open: number; ok: number }));
  return {
    child,
    add(url, grants) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin!.write(`${JSON.stringify({ url, grants })}\n`);
      });
    },
    drop(k) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin!.write(`${JSON.stringify({ close: k })}\n`);
      });
    },
    close() {
      child.stdin!.end();
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    },
  };
}

interface Ladder {
  /** Mean of the up and down medians per step (the top step has one). */
  rss: Record<number, number>;
  up: Record<number, number>;
  down: Record<number, number>;
  admitted: Record<number, number>;
  perViewerMb: number;
}

/**
 * RSS of `pid` at each step of viewers, up the steps and back down (0, 1, 5, 10, 20, 10, 5, 1, 0):
 * a drift of the heap over time (V8 growing or shrinking its spaces) then weighs on both sides of
 * the slope alike instead of passing for a per-viewer cost. Each step's figure is the mean of its
 * up and down medians; `perViewerMb` is the slope over all the points.
 */
async function ladder(pid: number, url: string, grant: () => string): Promise<Ladder> {
  const viewers = startViewers();
  const up: Record<number, number> = {};
  const down: Record<number, number> = {};
  const admitted: Record<number, number> = {};
  const xs: number[] = [];
  const ys: number[] = [];
  const measure = async () => {
    await sleep(SETTLE_S * 1000);
    const samples: number[] = [];
    for (let t = 0; t < SAMPLE_S * 4; t++) {
      samples.push(rssMb(pid));
      await sleep(250);
    }
    return med(samples);
  };
  try {
    let have = 0;
    for (const n of STEPS) {
      const r = await viewers.add(
        url,
        Array.from({ length: Math.max(0, n - have) }, () => grant()),
      );
      have = Math.max(have, n);
      admitted[n] = r.ok;
      up[n] = await measure();
      xs.push(n);
      ys.push(up[n]);
    }
    for (const n of [...STEPS].reverse().slice(1)) {
      await viewers.drop(have - n);
      have = n;
      down[n] = await measure();
      xs.push(n);
      ys.push(down[n]);
    }
  } finally {
    viewers.close();
  }
  const top = STEPS[STEPS.length - 1]!;
  const rss = Object.fromEntries(STEPS.map((n) => [n, n === top ? up[n]! : (up[n]! + down[n]!) / 2]));
  return { rss, up, down, admitted, perViewerMb: slope(xs, ys) };
}

const work = mkdtempSync(join(tmpdir(), 'lenscap-viewers-'));
let backend: FleetBackend | undefined;
let agent: ChildProcess | undefined;
const kids: ChildProcess[] = [];
try {
  const load0 = loadavg()[0]!;
  backend = await startFleetBackend(work);
  const { deviceCa, serverCa, keys, cloud } = backend;
  const serial = 'CAM-VIEWERS';
  const root = join(work, 'cam');
  const pool = await makeKeyPool(deviceCa, 1);
  const cfg = benchCamera(backend, pool, serial, root);
  cfg.camera = CAMERA;
  cfg.stream = { mode: 'always' };
  cfg.gate = { host: '127.0.0.1', port: 0, tls: true, maxViewers: Math.max(...STEPS) + 4 };
  const file = join(root, 'bench-config.json');
  writeFileSync(file, JSON.stringify(cfg));
  const compiledDir = new URL('../node_modules/.cache/lenscap-bench-build', import.meta.url).pathname;
  if (!values['no-build']) {
    buildCompiledAgent(compiledDir);
  }
  const shipped = values['node-flags'] === 'shipped';
  const nodeFlags = (
    shipped ? shippedNodeFlags() : values['node-flags'] === 'none' ? '' : values['node-flags']
  )
    .split(/\s+/)
    .filter(Boolean);
  const env = shipped ? shippedEnv() : {};
  const flagText = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...nodeFlags].join(' ') || '(none)';
  // As a board runs it: the esbuild bundle (bin/lenscap.js runs dist/bundle/).
  const started = await runAgentChild(file, { compiledDir: join(compiledDir, 'bundle'), nodeFlags, env });
  agent = started.child;
  if (!(await cloud.waitOnline(serial, 30_000))) throw new Error('agent did not come online');
  const gateUrl = `${started.gateUrl.replace('0.0.0.0', '127.0.0.1')}/live/${serial}.flv`;
  // Capture runs from the start (mode always): let the pipeline and the link settle first.
  await sleep(8000);
  const grant = () => mintGrant(keys.issuer, { serial, viewer: 'viewer', ttlSeconds: 600 }).token;
  const a = await ladder(agent.pid!, gateUrl, grant);
  await stopAgentChild(agent);
  agent = undefined;

  // Baseline: bare node-media-server (HTTPS-FLV), same node flags, same ffmpeg arguments.
  const rtmpPort = await freePort();
  const httpsPort = await freePort();
  const tls = serverCa.issueServer('localhost');
  writeFileSync(join(work, 'nms.key'), tls.key, { mode: 0o600 });
  writeFileSync(join(work, 'nms.crt'), tls.cert);
  const nms = spawn(
    process.execPath,
    [
      ...nodeFlags,
      new URL('./_nms-bare.mjs', import.meta.url).pathname,
      JSON.stringify({
        rtmpPort,
        httpsPort,
        key: join(work, 'nms.key'),
        cert: join(work, 'nms.crt'),
        storeDir: join(work, 'nms-store'),
      }),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  );
  kids.push(nms);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('bare node-media-server did not start in 20 s')), 20_000);
    nms.stdout!.once('data', () => (clearTimeout(t), resolve()));
    nms.once('exit', (c) => (clearTimeout(t), reject(new Error(`bare node-media-server exited (${c})`))));
  });
  // The agent's own camera request (schema defaults for label and colour), so ffmpeg's work is the same.
  const cam = configSchema.parse({ camera: CAMERA }).camera;
  const capture = await createTestPatternDriver({ hasDrawtext: false }).prepare({
    device: cam.device,
    width: cam.width,
    height: cam.height,
    fps: cam.fps,
    gopSeconds: cam.gopSeconds,
    bitrateKbps: cam.bitrateKbps,
    label: cam.label,
    color: cam.color,
  });
  const { options, source } = splitInput(capture.input);
  const ff = spawn(
    resolveFfmpegPath({}).path,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      ...options,
      '-i',
      source,
      ...capture.video,
      '-an',
      '-f',
      'flv',
      `rtmp://127.0.0.1:${rtmpPort}/live/bench`,
    ],
    { stdio: 'ignore' },
  );
  kids.push(ff);
  await sleep(8000);
  const b = await ladder(nms.pid!, `https://127.0.0.1:${httpsPort}/live/bench.flv`, () => 'none');
  const load1 = loadavg()[0]!;

  const row = (name: string, l: Ladder) =>
    `${name.padEnd(44)} ${STEPS.map((n) => `${n}: ${l.up[n]!.toFixed(1)}${l.down[n] === undefined ? '' : `/${l.down[n]!.toFixed(1)}`}`).join('  ')}   per viewer ${l.perViewerMb.toFixed(2)} MB   admitted ${STEPS.map((n) => l.admitted[n]).join('/')}`;
  console.log(
    `RSS (MB) by viewers attached (up/down the ladder), median of ${SAMPLE_S * 4} samples after ${SETTLE_S} s; test pattern ${CAMERA.width}x${CAMERA.height}@${CAMERA.fps} ${CAMERA.bitrateKbps} kb/s, viewers over HTTPS draining their bytes; node flags ${flagText}; load average ${load0.toFixed(1)} → ${load1.toFixed(1)} on ${cpus().length} cores`,
  );
  console.log(row('agent (compiled, gate over HTTPS, link up)', a));
  console.log(row('baseline: bare node-media-server (HTTPS-FLV)', b));
  const d = STEPS[STEPS.length - 1]!;
  console.log(
    `agent: ${((a.rss[d]! - a.rss[0]!) / d).toFixed(2)} MB per viewer from 0 to ${d}; baseline ${((b.rss[d]! - b.rss[0]!) / d).toFixed(2)} MB`,
  );
  console.log(
    `verdict: memory per extra viewer ${a.perViewerMb.toFixed(2)} MB (goal ≤ ${GOAL_MB} MB: ${a.perViewerMb <= GOAL_MB ? 'met' : 'MISSED'}); bare node-media-server ${b.perViewerMb.toFixed(2)} MB`,
  );
  writeFigures(values.json, 'viewers', STARTED, {
    perViewerMb: a.perViewerMb,
    baselinePerViewerMb: b.perViewerMb,
    rssMbByViewers: Object.fromEntries(STEPS.map((n) => [String(n), a.rss[n]!])),
    baselineRssMbByViewers: Object.fromEntries(STEPS.map((n) => [String(n), b.rss[n]!])),
    nodeFlags: flagText,
    loadAvg1: load0,
  });
} finally {
  if (agent) await stopAgentChild(agent);
  for (const k of kids) k.kill('SIGKILL');
  await backend?.close();
  rmSync(work, { recursive: true, force: true });
}
