/**
 * The dev cloud's relay (a second node-media-server) in its own process — NMS is a per-process
 * singleton and the camera's hub already lives in the test process. Prints its URLs as one JSON
 * line and exits when stdin closes.
 */
import { startRelay } from '../scripts/dev-cloud/relay.ts';
import { makeTempDir } from './tmp.ts';
import { createLogger } from '../agent/log.ts';

const tmp = makeTempDir('lenscap-relay-');
// Its log lines (push started/ended) go to stdout: the test counts publishes from them.
const relay = await startRelay({
  dir: tmp.dir,
  logger: createLogger({ level: 'info', destination: process.stdout }),
});
process.stdout.write(
  JSON.stringify({ ready: true, rtmpBase: relay.rtmpBase, httpBase: relay.httpBase }) + '\n',
);
process.stdin.resume();
process.stdin.on('end', async () => {
  await relay.close();
  tmp.cleanup();
  process.exit(0);
});
