/**
 * What the one-agent benches (bench/idle.ts, bench/viewers.ts) share: a camera's state written from
 * the fleet backend's trust (identity from the key pool, the backend's trust root and bundle, a
 * binding naming `viewer`) with its full-agent config, and the agent compiled as a device gets it.
 * Must never write outside `root` (the camera) or `dir` (the build).
 */
import { spawnSync } from 'node:child_process';
import { configSchema } from '../../agent/config/schema.ts';
import { signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { writeCameraState } from '../agent-runner.ts';
import type { KeyPool } from '../pki.ts';
import type { FleetBackend } from './backend.ts';
import { fullAgentConfig } from './full-agent.ts';

/** Writes `serial`'s state under `root`; returns its config (cloud link to the backend's broker). */
export function benchCamera(
  backend: FleetBackend,
  pool: KeyPool,
  serial: string,
  root: string,
): Record<string, unknown> {
  const { deviceCa, serverCa, keys, broker } = backend;
  writeCameraState(
    root,
    { ...pool.issue(serial), brokerCa: serverCa.certPem, deviceCa: deviceCa.certPem },
    {
      trustRootJwk: keys.trustRootJwk,
      trustBundle: keys.trustBundle,
      binding: signBindingRecord(keys.binding, { serial, owner: 'owner', viewers: ['viewer'], version: 1 }),
    },
  );
  const base = configSchema.parse({
    cloud: {
      url: broker.url,
      protocolVersion: 5,
      servername: 'localhost',
      backoff: { initialDelayMaxMs: 0 },
    },
  });
  return fullAgentConfig(base, serial, root);
}

/** scripts/build.mjs into `dir`: the tsc tree in dir/agent, the esbuild bundle a board runs in dir/bundle. */
export function buildCompiledAgent(dir: string): void {
  const b = spawnSync(
    process.execPath,
    [new URL('../../scripts/build.mjs', import.meta.url).pathname, '--out-dir', dir, '--allow-type-errors'],
    { encoding: 'utf8' },
  );
  if (b.status !== 0)
    throw new Error(`build failed: ${(b.stderr || b.stdout).trim().split('\n').slice(-3).join(' | ')}`);
}
