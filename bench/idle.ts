/**
 * Agent at idle: the whole agent (startAgent, test-pattern camera on demand so no capture runs,
 * cloud link connected over mTLS to a real mosquitto, telemetry at its default interval) in its
 * own process, BUILT as a device runs it (scripts/build.mjs into node_modules/.cache: the esbuild
 * bundle in bundle/, plain JS, no tsx); RSS and CPU read from /proc over 60 s, in 10 s windows.
 * Measured at the same time: a bare Node process doing nothing (the baseline), and the same agent
 * from the unbundled tsc tree (`unbundledRssMb`: what bundling saves). `--tsx` runs the agent from
 * source under tsx instead.
 * Goal (issue 8): ≤ 64 MB RSS, ≤ 1 % of one core.
 * Usage: npx tsx bench/idle.ts [--json FILE] [--seconds 60] [--warmup 10] [--tsx] [--no-build]
 *        [--node-flags shipped|none|"FLAGS"]   (default: the V8 flags and MALLOC_* env of packaging/lenscap.service)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFleetBackend, type FleetBackend } from '../harness/fleet/backend.ts';
import { benchCamera, buildCompiledAgent } from '../harness/fleet/bench-camera.ts';
import { runAgentChild, stopAgentChild } from '../harness/fleet/full-agent.ts';
import { makeKeyPool } from '../harness/pki.ts';
import { writeFigures } from './_json.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    tsx: { type: 'boolean', default: false },
    // 'shipped' = the V8 flags of packaging/lenscap.service's ExecStart (what a board runs); 'none' = none.
    'node-flags': { type: 'string', default: 'shipped' },
    'no-build': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const STARTED = Date.now();
const SECONDS = Number(values.seconds);
if (!Number.isInteger(SECONDS) || SECONDS < 1) {
  console.error(`--seconds must be a whole number of seconds ≥ 1, found ${values.seconds}`);
  process.exit(2);
}
const WARMUP = Number(values.warmup);
const WINDOW = 10;
const TICK = 100; // USER_HZ on Linux

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procCpuTicks(pid: number): number {
  // Fields after the command (which may contain spaces): state is field 3, utime 14, stime 15.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}
function procRssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Watched {
  name: string;
  pid: number;
  rss: number[];
  cpuPct: number[];
}

const unit = () => readFileSync(new URL('../packaging/lenscap.service', import.meta.url), 'utf8');
/** The V8 flags between @NODE@ and the app in the shipped systemd unit. */
function shippedNodeFlags(): string {
  const m = /^ExecStart=@NODE@ (.*?)\s*\/opt\/lenscap\/bin\/lenscap\.js /m.exec(unit());
  return m?.[1] ?? '';
}
/** The unit's Environment= lines that shape memory (MALLOC_*), as a board runs the agent. */
function shippedEnv(): Record<string, string> {
  const line = /^Environment=(MALLOC_.*)$/m.exec(unit())?.[1] ?? '';
  return Object.fromEntries(
    line
      .split(/\s+/)
      .filter(Boolean)
      .map((kv) => kv.split('=') as [string, string]),
  );
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const stat = (xs: number[], d = 1) =>
  `${med(xs).toFixed(d)} (min ${Math.min(...xs).toFixed(d)}, max ${Math.max(...xs).toFixed(d)})`;

const work = mkdtempSync(join(tmpdir(), 'lenscap-idle-'));
let backend: FleetBackend | undefined;
const kids: ChildProcess[] = [];
let agent: ChildProcess | undefined;
let unbundled: ChildProcess | undefined;
try {
  backend = await startFleetBackend(work);
  const { deviceCa, cloud } = backend;
  const pool = await makeKeyPool(deviceCa, 2);
  /** One camera's state and config under work/<name>; returns the config file. */
  const camera = (serial: string, name: string): string => {
    const root = join(work, name);
    const cfg = benchCamera(backend!, pool, serial, root);
    // As shipped: on-demand capture (idle = no ffmpeg), telemetry at its default interval.
    cfg.camera = { driver: 'testpattern' };
    delete cfg.telemetry;
    const file = join(root, 'bench-config.json');
    writeFileSync(file, JSON.stringify(cfg));
    return file;
  };
  const serial = 'CAM-IDLE';
  const file = camera(serial, 'cam');
  let compiledDir: string | undefined;
  if (!values.tsx)
    compiledDir = new URL('../node_modules/.cache/lenscap-bench-build', import.meta.url).pathname;
  if (compiledDir && !values['no-build']) {
    const t = Date.now();
    buildCompiledAgent(compiledDir);
    process.stderr.write(`idle: compiled the agent in ${((Date.now() - t) / 1000).toFixed(0)} s\n`);
  }
  const nodeFlags = (
    values['node-flags'] === 'shipped'
      ? shippedNodeFlags()
      : values['node-flags'] === 'none'
        ? ''
        : values['node-flags']
  )
    .split(/\s+/)
    .filter(Boolean);
  const env = values['node-flags'] === 'shipped' ? shippedEnv() : {};
  // What bin/lenscap.js runs on a board: the esbuild bundle (scripts/build.mjs) in dist/bundle/.
  const started = await runAgentChild(
    file,
    compiledDir ? { compiledDir: join(compiledDir, 'bundle'), nodeFlags, env } : { env },
  );
  agent = started.child;
  // Reference in the same run: the same agent from the plain tsc tree (one file per module).
  let unbundledPid: number | undefined;
  if (compiledDir) {
    const ref = await runAgentChild(camera('CAM-IDLE-TSC', 'cam-tsc'), { compiledDir, nodeFlags, env });
    unbundled = ref.child;
    unbundledPid = ref.child.pid;
    if (!(await cloud.waitOnline('CAM-IDLE-TSC', 30_000)))
      throw new Error('unbundled agent did not come online');
  }
  if (!(await cloud.waitOnline(serial, 30_000))) throw new Error('agent did not come online');
  const baseNode = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  const baseTsx = spawn(process.execPath, ['--import', 'tsx', '-e', 'setInterval(() => {}, 1 << 30)'], {
    stdio: 'ignore',
  });
  kids.push(baseNode, baseTsx);
  process.stderr.write(`idle: agent online (pid ${agent.pid}); warm-up ${WARMUP} s, then ${SECONDS} s\n`);
  await sleep(WARMUP * 1000);
  const watched: Watched[] = [
    {
      name: values.tsx
        ? 'agent (from source, under tsx)'
        : `agent (bundle as shipped, node${[...Object.entries(env).map(([k, v]) => ` ${k}=${v}`), ...nodeFlags.map((f) => ` ${f}`)].join('')})`,
      pid: agent.pid!,
      rss: [],
      cpuPct: [],
    },
    ...(unbundledPid
      ? [{ name: 'reference: same agent, tsc tree (unbundled)', pid: unbundledPid, rss: [], cpuPct: [] }]
      : []),
    { name: 'baseline: bare node', pid: baseNode.pid!, rss: [], cpuPct: [] },
    { name: 'baseline: node + tsx loader', pid: baseTsx.pid!, rss: [], cpuPct: [] },
  ];
  const last = watched.map((w) => procCpuTicks(w.pid));
  let lastT = performance.now();
  for (let s = 1; s <= SECONDS; s++) {
    await sleep(1000);
    watched.forEach((w) => w.rss.push(procRssMb(w.pid)));
    // The last window may be shorter (--seconds not a multiple of 10): it still yields a CPU sample.
    if (s % WINDOW === 0 || s === SECONDS) {
      const now = performance.now();
      watched.forEach((w, i) => {
        const t = procCpuTicks(w.pid);
        w.cpuPct.push(((t - last[i]!) / TICK / ((now - lastT) / 1000)) * 100);
        last[i] = t;
      });
      lastT = now;
    }
  }
  const a = watched[0]!;
  const bn = watched.find((w) => w.name === 'baseline: bare node')!;
  const ref = unbundledPid ? watched[1] : undefined;
  console.log(
    `agent idle over ${SECONDS} s after ${WARMUP} s warm-up (cloud link up, capture on demand and idle, default telemetry); RSS sampled every 1 s, CPU per ${WINDOW} s window; median (min, max)`,
  );
  for (const w of watched)
    console.log(`${w.name.padEnd(30)} RSS ${stat(w.rss)} MB   CPU ${stat(w.cpuPct, 2)} % of one core`);
  console.log(
    `agent RSS over bare node: ${(med(a.rss) - med(bn.rss)).toFixed(1)} MB; ratio agent/bare node ${(med(a.rss) / med(bn.rss)).toFixed(2)}`,
  );
  if (ref)
    console.log(
      `bundle vs the same agent unbundled: ${med(a.rss).toFixed(1)} vs ${med(ref.rss).toFixed(1)} MB (${(med(a.rss) - med(ref.rss)).toFixed(1)} MB)`,
    );
  const rssOk = med(a.rss) <= 64;
  const cpuOk = med(a.cpuPct) <= 1;
  console.log(
    `goal ≤ 64 MB RSS: ${rssOk ? 'met' : `MISSED (${med(a.rss).toFixed(1)} MB)`}; goal ≤ 1 % CPU: ${cpuOk ? 'met' : 'MISSED'} (${med(a.cpuPct).toFixed(2)} %)`,
  );
  writeFigures(values.json, 'idle', STARTED, {
    nodeFlags: [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...nodeFlags].join(' '),
    rssMb: med(a.rss),
    cpuPercent: med(a.cpuPct),
    bareNodeRssMb: med(bn.rss),
    ...(ref ? { unbundledRssMb: med(ref.rss) } : {}),
  });
} finally {
  if (agent) await stopAgentChild(agent);
  if (unbundled) await stopAgentChild(unbundled);
  for (const k of kids) k.kill('SIGKILL');
  await backend?.close();
  rmSync(work, { recursive: true, force: true });
}
