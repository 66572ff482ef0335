/** Builds the status light named by config (`none` or `sysfs`). */
import { createNoLed } from './none.ts';
import { createSysfsLed } from './sysfs.ts';
import type { StatusLed } from './types.ts';

export function createStatusLed(
  cfg: { driver: 'none' | 'sysfs'; name?: string; sysfsRoot: string },
  onError?: (err: Error) => void,
): StatusLed {
  if (cfg.driver === 'none') return createNoLed();
  if (!cfg.name) throw new Error('led.name is required for the sysfs LED driver');
  return createSysfsLed({ name: cfg.name, sysfsRoot: cfg.sysfsRoot, ...(onError ? { onError } : {}) });
}
