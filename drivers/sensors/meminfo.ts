/**
 * Board memory from the kernel (/proc/meminfo): total and available (MemAvailable: what can be
 * given to a new process without swapping, the figure systeminformation's mem() reported as
 * `available`). A driver so that agent/ never reads /proc itself; the file is injectable for tests.
 * Must never spawn a process or block: one async read.
 */
import { readFile } from 'node:fs/promises';

export async function readMemory(
  file = '/proc/meminfo',
): Promise<{ totalBytes: number; availableBytes: number } | null> {
  const text = await readFile(file, 'utf8');
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const totalBytes = kb('MemTotal');
  // Kernels before 3.14 have no MemAvailable: free + buffers + cache is its old approximation.
  const availableBytes =
    kb('MemAvailable') ??
    (kb('MemFree') !== undefined ? kb('MemFree')! + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0) : undefined);
  if (!totalBytes || availableBytes === undefined) return null;
  return { totalBytes, availableBytes };
}
