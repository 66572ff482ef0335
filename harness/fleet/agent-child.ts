/**
 * One full agent in its own process (node-media-server is a per-process singleton, so a fleet with
 * several full agents needs one process each): reads a config JSON from argv[2], runs
 * `startAgent`, prints `{"ready":true,"gateUrl":...}` on stdout, stops cleanly on SIGTERM or when
 * stdin closes (the parent died). Must never outlive its parent.
 */
import { readFileSync } from 'node:fs';
import { configSchema } from '../../agent/config/schema.ts';
import { silentLogger } from '../../agent/log.ts';

const spec = '../../agent/controller.ts';
const { startAgent } = (await import(spec)) as {
  startAgent: (c: unknown, d: unknown) => Promise<{ gateUrl: string; stop(r?: string): Promise<void> }>;
};
const config = configSchema.parse(JSON.parse(readFileSync(process.argv[2]!, 'utf8')));
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
  process.stdout.write(`${JSON.stringify({ ready: false, error: (err as Error).message })}\n`);
  process.exit(1);
}
