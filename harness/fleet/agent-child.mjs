// One full agent from a COMPILED build (plain JS, no tsx: what a device runs), for benches that
// measure the agent's own footprint. argv[2] = build dir (holding agent/), argv[3] = config JSON.
// Prints {"ready":true,"gateUrl":...}; stops on SIGTERM or when stdin closes. Never outlives its parent.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const dir = process.argv[2];
const mod = (p) => import(pathToFileURL(join(dir, p)).href);
const { startAgent } = await mod('agent/controller.js');
const { configSchema } = await mod('agent/config/schema.js');
const { silentLogger } = await mod('agent/log.js');
const config = configSchema.parse(JSON.parse(readFileSync(process.argv[3], 'utf8')));
try {
  const handle = await startAgent(config, { logger: silentLogger() });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await handle.stop('bench done').catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.stdin.on('end', () => void stop());
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ ready: true, gateUrl: handle.gateUrl, pid: process.pid })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ ready: false, error: err.message })}\n`);
  process.exit(1);
}
