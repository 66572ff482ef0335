/**
 * The system figures of one telemetry sample, each from the cheapest source that does not block the
 * event loop (it also hosts the media server and the viewer gate). Measured on the dev machine
 * (x86_64, 2 cores; see docs/cloud.md): systeminformation's mem() reads /proc/meminfo (1–4 ms, no
 * block) and currentLoad() reads /proc/stat (<1 ms once warm; its first call waits ~0.5 s, async).
 * Its cpuTemperature(), networkStats() and fsSize() spawn or execSync (20–60 ms, up to 32 ms of
 * event-loop block), so temperature, network bytes and disk come from sysfs/procfs/statfs reads
 * instead (the sysfs/procfs readers live in drivers/sensors/). Must never spawn a process or call a *Sync API.
 */
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import si from 'systeminformation';
import { readNetworkBytes } from '../../drivers/sensors/net-counters.ts';
import { readTemperature } from '../../drivers/sensors/thermal.ts';

export { readNetworkBytes, readTemperature };

export interface SystemFigures {
  cpu: { load1: number; load5: number; load15: number; percent: number | null };
  /** Highest thermal zone in °C; null when the board has no sensor. */
  temperatureC: number | null;
  memory: { totalBytes: number; availableBytes: number; usedPercent: number };
  disk: { path: string; totalBytes: number; freeBytes: number; usedPercent: number } | null;
  network: { rxBytes: number; txBytes: number } | null;
  uptimeSeconds: { system: number; agent: number };
  /** What each probe cost this time, ms (wall time, async). */
  costMs: Record<string, number>;
}

export interface ProbeOptions {
  /** The state dir: its file system is the one reported. */
  diskPath: string;
  /** Where thermal zones and net counters live (tests point these at fixtures). */
  thermalDir?: string;
  netDevFile?: string;
}

async function timed<T>(
  cost: Record<string, number>,
  name: string,
  fn: () => Promise<T>,
  fallback: T,
): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } catch {
    return fallback;
  } finally {
    cost[name] = Math.round((performance.now() - t0) * 100) / 100;
  }
}

export async function readDisk(path: string) {
  const s = await statfs(path);
  const totalBytes = s.blocks * s.bsize;
  const freeBytes = s.bavail * s.bsize;
  return {
    path,
    totalBytes,
    freeBytes,
    usedPercent: totalBytes ? round(((totalBytes - freeBytes) / totalBytes) * 100) : 0,
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

export async function probeSystem(opts: ProbeOptions): Promise<SystemFigures> {
  const costMs: Record<string, number> = {};
  // Sequential on purpose: a sample is not urgent, and one probe at a time keeps each short.
  const load = await timed(costMs, 'currentLoad', () => si.currentLoad(), null);
  const mem = await timed(costMs, 'mem', () => si.mem(), null);
  const temperatureC = await timed(costMs, 'temperature', () => readTemperature(opts.thermalDir), null);
  const disk = await timed(costMs, 'disk', () => readDisk(opts.diskPath), null);
  const network = await timed(costMs, 'network', () => readNetworkBytes(opts.netDevFile), null);
  const [load1, load5, load15] = os.loadavg() as [number, number, number];
  return {
    cpu: {
      load1: round(load1 * 100) / 100,
      load5: round(load5 * 100) / 100,
      load15: round(load15 * 100) / 100,
      percent: load ? round(load.currentLoad) : null,
    },
    temperatureC: temperatureC === null ? null : round(temperatureC),
    memory: mem
      ? {
          totalBytes: mem.total,
          availableBytes: mem.available,
          usedPercent: round(((mem.total - mem.available) / mem.total) * 100),
        }
      : {
          totalBytes: os.totalmem(),
          availableBytes: os.freemem(),
          usedPercent: round((1 - os.freemem() / os.totalmem()) * 100),
        },
    disk,
    network,
    uptimeSeconds: { system: Math.round(os.uptime()), agent: Math.round(process.uptime()) },
    costMs,
  };
}
