/**
 * A sysfs LED: writes `<root>/class/leds/<name>/brightness` (max_brightness when on, 0 when off).
 * Only writes on change. A write failure is reported through onError and never thrown: a broken
 * light must not take the stream down. Never writes outside that one file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusLed } from './types.ts';

export interface SysfsLedOptions {
  name: string;
  sysfsRoot?: string;
  onError?: (err: Error) => void;
}

export function createSysfsLed(opts: SysfsLedOptions): StatusLed {
  if (!/^[A-Za-z0-9:_.-]+$/.test(opts.name) || opts.name.startsWith('.'))
    throw new Error(`invalid LED name ${JSON.stringify(opts.name)}`);
  const dir = join(opts.sysfsRoot ?? '/sys', 'class', 'leds', opts.name);
  let max = '1';
  try {
    const m = readFileSync(join(dir, 'max_brightness'), 'utf8').trim();
    if (/^\d+$/.test(m) && m !== '0') max = m;
  } catch {
    /* some LEDs lack max_brightness: 1 is on */
  }
  let current: boolean | undefined;
  return {
    name: `sysfs:${opts.name}`,
    set(on) {
      if (current === on) return;
      try {
        writeFileSync(join(dir, 'brightness'), on ? max : '0');
        current = on;
      } catch (err) {
        opts.onError?.(err as Error);
      }
    },
  };
}
