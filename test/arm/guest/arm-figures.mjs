// QEMU board test, guest side (stage 2): the agent's own figures on the emulated arm64 board,
// measured inside the guest while the host drives the flow (issue 18 goal 4). Runs in the
// background from stage2.sh: usage `node arm-figures.mjs SHARE`.
//  1. On the host's `measure-idle` file: the running agent (systemd MainPID) at idle, cloud link up
//     and capture idle — RSS every 1 s and CPU over the window — next to a bare node doing nothing.
//     Writes arm-idle.json, marks idle-measured.
//  2. While the agent captures (the host's first grant started it): the capture ffmpeg's own
//     arguments up to its output, read from /proc (the output is `pipe:1`: the agent's hub reads
//     ffmpeg's stdout; an older agent's rtmp:// publish URL, which held a per-run key, is dropped in
//     memory, never written anywhere).
//  3. On the guest's `camera-free` mark (agent stopped, its ffmpeg gone): ffmpeg alone with those arguments
//     writing FLV to a pipe, spawn → first keyframe tag, 3 runs. Writes arm-ffmpeg.json, marks
//     ffmpeg-measured.
// Emulated (TCG): the absolutes are not a board's; the ratios are what docs/benchmarks.md reports.
// Must never print or store a publish URL.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const S = process.argv[2] ?? '/mnt/host';
const IDLE_WARMUP_S = 10;
const IDLE_S = 30;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const uptime = () => readFileSync('/proc/uptime', 'utf8').split(' ')[0];
const mark = (name) => appendFileSync(join(S, 'marks'), `${name} ${uptime()}\n`);
const say = (l) => console.log(`arm-figures: ${l}`);
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`arm-figures: ${what} not seen in ${ms} ms`);
    await sleep(200);
  }
}
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
function cpuTicks(pid) {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
const mainPid = () =>
  Number(
    execFileSync('systemctl', ['show', '-p', 'MainPID', '--value', 'lenscap.service']).toString().trim(),
  );
const marks = () => (existsSync(join(S, 'marks')) ? readFileSync(join(S, 'marks'), 'utf8') : '');

async function idle() {
  await waitFor(() => existsSync(join(S, 'measure-idle')), 600_000, 'measure-idle');
  const pid = mainPid();
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  await sleep(IDLE_WARMUP_S * 1000);
  const rss = [];
  const bareRss = [];
  const t0 = cpuTicks(pid);
  const w0 = performance.now();
  for (let i = 0; i < IDLE_S; i++) {
    await sleep(1000);
    rss.push(rssMb(pid));
    bareRss.push(rssMb(bare.pid));
  }
  const cpuPercent = ((cpuTicks(pid) - t0) / 100 / ((performance.now() - w0) / 1000)) * 100;
  bare.kill('SIGKILL');
  const out = {
    rssMb: med(rss),
    rssMaxMb: Math.max(...rss),
    cpuPercent,
    bareNodeRssMb: med(bareRss),
    seconds: IDLE_S,
    // node's own flags: the arguments between the binary and the script.
    nodeFlags: readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .slice(1)
      .filter((a, i, all) => a.startsWith('--') && all.slice(0, i).every((b) => b.startsWith('--')))
      .join(' '),
  };
  writeFileSync(join(S, 'arm-idle.json'), JSON.stringify(out) + '\n');
  say(`idle: ${JSON.stringify(out)}`);
  mark('idle-measured');
}

/** The capture ffmpeg's arguments up to its output (`pipe:1`, or an older agent's rtmp:// URL). */
async function captureArgs() {
  let args;
  await waitFor(
    () => {
      for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== 'ffmpeg') continue;
          const a = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
          const out = a.findIndex((x) => x === 'pipe:1' || /^rtmp:\/\//.test(x));
          if (out < 0) continue;
          args = { exe: a[0], args: a.slice(1, out) };
          return true;
        } catch {
          /* gone */
        }
      }
      return false;
    },
    600_000,
    'the capture ffmpeg',
  );
  say(`capture ffmpeg found (${args.args.length} arguments before its output)`);
  return args;
}

function ffmpegFirstKeyframe({ exe, args }) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(exe, [...args, 'pipe:1'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (v, err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (err) reject(err);
      else resolve(v);
    };
    const timer = setTimeout(() => finish(0, new Error('no keyframe in 120 s')), 120_000);
    child.stdout.on('data', (b) => {
      buf = Buffer.concat([buf, b]);
      let off = 13;
      while (off + 11 <= buf.length) {
        const size = buf.readUIntBE(off + 1, 3);
        if (off + 11 + size > buf.length) break;
        // Video tag, frame type 1 (keyframe), AVC packet type 1 (a coded frame, not the header).
        if ((buf[off] & 0x1f) === 9 && buf[off + 11] >> 4 === 1 && buf[off + 12] === 1)
          return finish(performance.now() - t0);
        off += 11 + size + 4;
      }
    });
    child.on('exit', () => finish(0, new Error('ffmpeg exited before a keyframe')));
  });
}

async function ffmpegAlone(args) {
  await waitFor(() => /^camera-free /m.test(marks()), 900_000, 'camera-free');
  await sleep(1000);
  const runs = [];
  for (let i = 0; i < 3; i++) {
    runs.push(await ffmpegFirstKeyframe(args));
    await sleep(500);
  }
  const out = { ffmpegFirstKeyframeMs: med(runs), runs };
  writeFileSync(join(S, 'arm-ffmpeg.json'), JSON.stringify(out) + '\n');
  say(`ffmpeg alone: ${JSON.stringify(out)}`);
  mark('ffmpeg-measured');
}

try {
  await idle();
  const args = await captureArgs();
  await ffmpegAlone(args);
} catch (err) {
  say(`FAILED: ${err.message}`);
  writeFileSync(join(S, 'arm-figures.failed'), `${err.message}\n`);
  mark('arm-figures-failed');
}
