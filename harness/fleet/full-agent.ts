/**
 * A "full" camera for the fleet benches: the whole agent through the lead's composition root
 * (agent/controller.ts `startAgent`), in its own process (harness/fleet/agent-child.ts), with the
 * test-pattern camera at the smallest size, the gate on 127.0.0.1 (HTTPS with the device
 * certificate) and the cloud link to the bench broker. Falls back to a light camera, and says so,
 * when the composition root cannot start here. Must never leave a child behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../agent/config/schema.ts';
import {
  startLightCamera,
  writeCameraState,
  type CameraIdentity,
  type CameraTrust,
  type FleetCamera,
} from './camera.ts';

let mode = 'startAgent in its own process (test-pattern pipeline, 160x90 @ 10 fps)';
const children = new Set<ChildProcess>();
process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));

/** What the full agents really are in this run (printed with the figures). */
export function fullAgentsAvailable(): string {
  return mode;
}

/** The smallest capture the test pattern offers that still carries a keyframe every second. */
export function fullAgentConfig(base: Config, serial: string, root: string): Record<string, unknown> {
  return {
    serial,
    stateDir: root,
    cloud: base.cloud,
    camera: { driver: 'testpattern', width: 160, height: 90, fps: 10, gopSeconds: 1, bitrateKbps: 100 },
    gate: { host: '127.0.0.1', port: 0, tls: true },
    telemetry: { intervalSeconds: 3600 },
    log: { level: 'silent' },
  };
}

/** Runs harness/fleet/agent-child.ts on a config file; resolves once the agent said it is ready. */
export function runAgentChild(
  configFile: string,
  opts: { compiledDir?: string; nodeFlags?: string[]; env?: Record<string, string> } = {},
): Promise<{ child: ChildProcess; gateUrl: string }> {
  const args = opts.compiledDir
    ? [
        ...(opts.nodeFlags ?? []),
        new URL('./agent-child.mjs', import.meta.url).pathname,
        opts.compiledDir,
        configFile,
      ]
    : ['--import', 'tsx', new URL('./agent-child.ts', import.meta.url).pathname, configFile];
  const child = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-1000)));
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(
      () => (child.kill('SIGKILL'), reject(new Error('agent did not start within 30 s'))),
      30_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(t);
      const msg = JSON.parse(out.slice(0, nl)) as { ready: boolean; gateUrl?: string; error?: string };
      if (msg.ready) resolve({ child, gateUrl: msg.gateUrl! });
      else reject(new Error(msg.error ?? 'agent failed'));
    });
    child.once(
      'exit',
      (code) => (
        clearTimeout(t),
        reject(new Error(`agent exited (${code}): ${err.trim().split('\n').slice(-2).join(' | ')}`))
      ),
    );
  });
}

export async function stopAgentChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(t);
}

export async function startFullAgent(opts: {
  serial: string;
  root: string;
  config: Config;
  identity: CameraIdentity;
  trust: CameraTrust;
  deviceCaPem: string;
}): Promise<FleetCamera> {
  try {
    writeCameraState(opts.root, { ...opts.identity, deviceCa: opts.deviceCaPem }, opts.trust);
    const file = join(opts.root, 'bench-config.json');
    writeFileSync(file, JSON.stringify(fullAgentConfig(opts.config, opts.serial, opts.root)));
    const { child, gateUrl } = await runAgentChild(file);
    return {
      serial: opts.serial,
      kind: 'full',
      gateUrl: gateUrl.replace('0.0.0.0', '127.0.0.1'),
      emitted: () => -1,
      queued: () => -1,
      stop: () => stopAgentChild(child),
    };
  } catch (err) {
    mode = `startAgent could not start here (${(err as Error).message.slice(0, 160)}): light cameras stand in`;
    return startLightCamera(opts);
  }
}
