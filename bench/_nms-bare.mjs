// The baseline hub for bench/viewers.ts: node-media-server 4.4.3 as its README runs it (the package
// entry: RTMP in, HTTP-FLV out over HTTPS), no gate, no grants, no agent. Plain node (no tsx), so
// its memory is comparable with the compiled agent's. argv[2] = JSON {rtmpPort, httpsPort, key,
// cert, storeDir}; prints {"ready":true} once it listens. Never outlives its parent (stdin closes).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const opts = JSON.parse(process.argv[2]);
const logger = require('node-media-server/src/core/logger.js');
// NMS forces debug logging to the console; the bench reads only our own line on stdout.
Object.defineProperty(logger, 'level', { get: () => 'error', set: () => {}, configurable: true });
logger.log = () => undefined;
const NodeMediaServer = require('node-media-server');
const nms = new NodeMediaServer({
  bind: '127.0.0.1',
  rtmp: { port: opts.rtmpPort, chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 },
  https: { port: opts.httpsPort, key: opts.key, cert: opts.cert },
  store: { path: opts.storeDir },
  webadmin: { enable: false },
});
await nms.run();
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
