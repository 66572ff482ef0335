// QEMU board test, guest side: run inside a copy of the installed lenscap unit (same user, groups,
// sandbox, syscall filter, notify settings) with a short WatchdogSec. Checks that
// - the bundle's systemd watchdog (dist/agent/systemd/watchdog.js) keeps systemd satisfied for the
//   whole run (lost pings would get the unit killed: Result=watchdog), and
// - what the agent does in that sandbox works: ffmpeg captures the camera (DeviceAllow, the video
//   group and the syscall filter let it through).
// Usage: node watchdog-check.mjs /opt/lenscap SECONDS
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const app = process.argv[2] ?? '/opt/lenscap';
const seconds = Number(process.argv[3] ?? 12);
const { createWatchdog } = await import(pathToFileURL(join(app, 'dist/agent/systemd/watchdog.js')).href);
// The ffmpeg the installed agent would run, found by its own resolver (never a bare name).
const { resolveFfmpegPath } = await import(pathToFileURL(join(app, 'dist/agent/stream/ffmpeg-path.js')).href);
const say = (level) => (o, m) => console.log(level, m, JSON.stringify(o));
const logger = { info: say('INFO'), warn: say('WARN'), error: say('ERROR'), debug() {} };
const wd = createWatchdog({ logger });
console.log(`enabled=${wd.enabled} intervalMs=${wd.intervalMs}`);
if (!wd.enabled || wd.intervalMs === 0) process.exit(3);
await wd.start();
const t0 = Date.now();
const code = await new Promise((resolve) => {
  const p = spawn(
    resolveFfmpegPath().path,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'v4l2',
      '-framerate',
      '15',
      '-video_size',
      '320x180',
      '-i',
      '/dev/video0',
      '-t',
      '2',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-f',
      'null',
      '-',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  p.on('exit', (c) => resolve(c));
  p.on('error', (e) => resolve(String(e)));
});
console.log(`ffmpeg capture in the sandbox: exit ${code}`);
if (code !== 0) process.exit(4);
await new Promise((r) => setTimeout(r, Math.max(0, seconds * 1000 - (Date.now() - t0))));
await wd.stop();
console.log('clean exit');
