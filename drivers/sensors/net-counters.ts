/**
 * Network byte counters from the kernel (procfs). A driver so that agent/ never reads /proc
 * itself; the file is injectable for tests. Must never spawn a process (systeminformation's
 * networkStats does, and blocks the event loop).
 */
import { readFile } from 'node:fs/promises';

/** Sum of rx/tx bytes over every interface but loopback, from /proc/net/dev. */
export async function readNetworkBytes(
  file = '/proc/net/dev',
): Promise<{ rxBytes: number; txBytes: number }> {
  const text = await readFile(file, 'utf8');
  let rxBytes = 0;
  let txBytes = 0;
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1]!.trim() === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    rxBytes += f[0] ?? 0;
    txBytes += f[8] ?? 0;
  }
  return { rxBytes, txBytes };
}
