/**
 * CPU busy share of the whole board from the kernel's counters (/proc/stat, first line), over the
 * time since the previous reading — what systeminformation's currentLoad() reported, without
 * loading that library (~0.7 MB of source and ~1.3 MB of RSS held for the agent's life at idle).
 * A driver so that agent/ never reads /proc itself; the file is injectable for tests.
 * Must never spawn a process or block: one async read per call.
 */
import { readFile } from 'node:fs/promises';

interface Ticks {
  busy: number;
  total: number;
}

/** The aggregate "cpu" line: user nice system idle iowait irq softirq steal (guest is inside user). */
export function parseCpuTicks(text: string): Ticks | null {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) return null;
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return null;
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** Returns a reader: each call gives the busy percentage since the previous call (since boot on the first). */
export function createCpuLoadReader(file = '/proc/stat'): () => Promise<number | null> {
  let last: Ticks = { busy: 0, total: 0 };
  return async () => {
    const now = parseCpuTicks(await readFile(file, 'utf8'));
    if (!now) return null;
    const dTotal = now.total - last.total;
    const dBusy = now.busy - last.busy;
    last = now;
    if (dTotal <= 0) return 0;
    return Math.min(100, Math.max(0, (dBusy / dTotal) * 100));
  };
}
