// QEMU board test, guest side: does the agent's media hub (node-media-server 4's FLV parser and
// BroadcastServer, from the installed bundle) run under this node? Starts the installed hub
// (dist/agent/stream/media-hub.js) in process — it has no listener — pipes the vivid camera into it
// the way the agent does (ffmpeg, libx264, FLV on stdout into hub.ingest()), attaches an in-process
// tap and times spawn → first video keyframe at the tap. Prints one JSON line; exit 0 on success.
// Usage: node nms-check.mjs /opt/lenscap
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const appDir = process.argv[2] ?? '/opt/lenscap';
const load = (p) => import(pathToFileURL(join(appDir, 'dist', p)).href);
const t0 = Date.now();
const { createMediaHub } = await load('agent/stream/media-hub.js');
// The ffmpeg the installed agent would run, found by its own resolver (never a bare name).
const { resolveFfmpegPath } = await load('agent/stream/ffmpeg-path.js');
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
quiet.child = () => quiet;
const hub = createMediaHub({ serial: 'CHECK', logger: quiet });
const loadedMs = Date.now() - t0;

let failure;
const ingest = hub.ingest((f) => (failure = f));
let bytes = 0;
let buf = Buffer.alloc(0);
const tPub = Date.now();
const done = (ok, extra) => {
  console.log(JSON.stringify({ ok, node: process.version, loadedMs, ...extra }));
  ff.kill('SIGKILL');
  process.exit(ok ? 0 : 1);
};
hub.attach({
  write(chunk) {
    bytes += chunk.length;
    buf = Buffer.concat([buf, chunk]);
    // FLV: 9-byte header + 4-byte prev size, then tags (type 9 = video; 0x17 0x01 = AVC keyframe NALU).
    let off = 13;
    while (off + 11 <= buf.length) {
      const type = buf[off] & 0x1f;
      const size = buf.readUIntBE(off + 1, 3);
      if (off + 11 + size > buf.length) break;
      if (type === 9 && buf[off + 11] === 0x17 && buf[off + 12] === 1)
        return done(true, { firstVideoMs: Date.now() - tPub, bytes, path: 'ffmpeg stdout → hub ingest' });
      off += 11 + size + 4;
    }
  },
  end() {},
});
const ff = spawn(
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
    process.env.CAP_SIZE ?? '320x180',
    '-i',
    '/dev/video0',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-tune',
    'zerolatency',
    '-g',
    '15',
    '-pix_fmt',
    'yuv420p',
    '-an',
    '-f',
    'flv',
    '-flvflags',
    'no_duration_filesize',
    'pipe:1',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
ff.stdout.pipe(ingest);
ff.on('exit', (code, signal) => done(false, { error: `ffmpeg exited (${code ?? signal})`, failure }));
setTimeout(() => done(false, { error: 'timeout', failure }), 40000).unref();
setInterval(() => failure && done(false, { error: failure.code, message: failure.message }), 200).unref();
