/**
 * Board temperature from the kernel's thermal zones (sysfs). A driver so that agent/ never reads
 * /sys itself; the directory is injectable for tests and boards with another layout.
 * Must never block: async reads only.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Highest reading of /sys/class/thermal/thermal_zone*\/temp (millidegrees). */
export async function readTemperature(dir = '/sys/class/thermal'): Promise<number | null> {
  const zones = (await readdir(dir)).filter((n) => n.startsWith('thermal_zone'));
  let max: number | null = null;
  for (const z of zones) {
    const raw = await readFile(`${dir}/${z}/temp`, 'utf8').catch(() => '');
    const milli = Number.parseInt(raw.trim(), 10);
    if (Number.isFinite(milli) && milli > -100_000 && milli < 200_000)
      max = Math.max(max ?? -Infinity, milli / 1000);
  }
  return max;
}
