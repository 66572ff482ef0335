// QEMU board test, guest side: does node-media-server 4 from the installed bundle run under this
// node? Starts the hub on loopback, publishes the vivid camera into it with ffmpeg (RTMP, libx264),
// pulls HTTP-FLV back and times the first video tag. Prints one JSON line; exit 0 on success.
// Usage: node nms-check.mjs /opt/lenscap
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const appDir = process.argv[2] ?? '/opt/lenscap';
const require = createRequire(join(appDir, 'package.json'));
const t0 = Date.now();
const NodeMediaServer = require('node-media-server');
const rtmpPort = 19350 + (process.pid % 1000);
const httpPort = 18000 + (process.pid % 1000);
const origLog = console.log;
console.log = () => {}; // the hub logs at debug level unconditionally
const nms = new NodeMediaServer({
  bind: '127.0.0.1',
  rtmp: { port: rtmpPort },
  http: { port: httpPort },
  store: { path: '/tmp/nms-store' },
});
nms.run();
const loadedMs = Date.now() - t0;
// The ffmpeg the installed agent would run, found by its own resolver (never a bare name).
const { resolveFfmpegPath } = await import(
  pathToFileURL(join(appDir, 'dist/agent/stream/ffmpeg-path.js')).href
);
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
    '-f',
    'flv',
    `rtmp://127.0.0.1:${rtmpPort}/live/check`,
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const done = (ok, extra) => {
  console.log = origLog;
  console.log(JSON.stringify({ ok, node: process.version, loadedMs, ...extra }));
  ff.kill('SIGKILL');
  process.exit(ok ? 0 : 1);
};
setTimeout(() => done(false, { error: 'timeout' }), 40000).unref();
const tPub = Date.now();
const tryPull = () => {
  const req = http.get({ host: '127.0.0.1', port: httpPort, path: '/live/check.flv' }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      setTimeout(tryPull, 300);
      return;
    }
    let bytes = 0;
    let buf = Buffer.alloc(0);
    res.on('data', (chunk) => {
      bytes += chunk.length;
      buf = Buffer.concat([buf, chunk]);
      // FLV: 9-byte header + 4-byte prev size, then tags (type 9 = video).
      let off = 13;
      while (off + 11 <= buf.length) {
        const type = buf[off] & 0x1f;
        const size = buf.readUIntBE(off + 1, 3);
        if (type === 9) return done(true, { firstVideoMs: Date.now() - tPub, bytes });
        off += 11 + size + 4;
      }
    });
    res.on('end', () => setTimeout(tryPull, 300));
  });
  req.on('error', () => setTimeout(tryPull, 300));
};
setTimeout(tryPull, 500);
