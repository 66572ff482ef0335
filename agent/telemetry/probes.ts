/**
 * The system figures of one telemetry sample, each from the cheapest source that does not block the
 * event loop (it also hosts the media server and the viewer gate). Every figure is one async read
 * of procfs/sysfs or a statfs (the readers live in drivers/sensors/; see docs/cloud.md):
 * systeminformation, used here before, spawned or execSync'd for temperature, network and disk
 * (20–60 ms, up to 32 ms of event-loop block), and even for CPU and memory it cost the idle agent
 * ~1.3 MB of RSS for two reads of /proc (issue 18). Must never spawn a process or call a *Sync API.
 */
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { createCpuLoadReader } from '../../drivers/sensors/cpu-load.ts';
import { readMemory } from '../../drivers/sensors/meminfo.ts';
import { readNetworkBytes } from '../../drivers/sensors/net-counters.ts';
import { readTemperature } from '../../drivers/sensors/thermal.ts';

export { readNetworkBytes, readTemperature, readMemory };

/** Busy share since the previous sample; one reader per process, as the counters are the board's. */
const readCpuLoad = createCpuLoadReader();

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
  meminfoFile?: string;
  /** A CPU reader over another /proc/stat (tests); default: the board's, shared. */
  cpuLoad?: () => Promise<number | null>;
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
  const load = await timed(costMs, 'currentLoad', opts.cpuLoad ?? readCpuLoad, null);
  const mem = await timed(costMs, 'mem', () => readMemory(opts.meminfoFile), null);
  const temperatureC = await timed(costMs, 'temperature', () => readTemperature(opts.thermalDir), null);
  const disk = await timed(costMs, 'disk', () => readDisk(opts.diskPath), null);
  const network = await timed(costMs, 'network', () => readNetworkBytes(opts.netDevFile), null);
  const [load1, load5, load15] = os.loadavg() as [number, number, number];
  return {
    cpu: {
      load1: round(load1 * 100) / 100,
      load5: round(load5 * 100) / 100,
      load15: round(load15 * 100) / 100,
      percent: load === null ? null : round(load),
    },
    temperatureC: temperatureC === null ? null : round(temperatureC),
    memory: mem
      ? {
          totalBytes: mem.totalBytes,
          availableBytes: mem.availableBytes,
          usedPercent: round(((mem.totalBytes - mem.availableBytes) / mem.totalBytes) * 100),
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
