/**
 * A privacy switch on a GPIO read through sysfs (`/sys/class/gpio/gpioN/value`), polled. An
 * unreadable or unexpected value reads as privacy ON: a switch that cannot be read must not let
 * the camera stream. Read-only: never exports or configures the pin.
 */
import { readFileSync } from 'node:fs';
import type { PrivacySwitch } from './types.ts';

export interface GpioSwitchOptions {
  path: string;
  activeLow?: boolean;
  pollMs?: number;
  onError?: (err: Error) => void;
}

export function createGpioSwitch(opts: GpioSwitchOptions): PrivacySwitch {
  let reported = false;
  const read = (): boolean => {
    try {
      const v = readFileSync(opts.path, 'utf8').trim();
      if (v !== '0' && v !== '1') throw new Error(`unexpected GPIO value ${JSON.stringify(v.slice(0, 8))}`);
      reported = false;
      return (v === '1') !== (opts.activeLow ?? false);
    } catch (err) {
      if (!reported) opts.onError?.(err as Error);
      reported = true;
      return true;
    }
  };
  return {
    name: `sysfs-gpio:${opts.path}`,
    read,
    watch(onChange) {
      let last = read();
      const t = setInterval(() => {
        const now = read();
        if (now !== last) {
          last = now;
          onChange(now);
        }
      }, opts.pollMs ?? 250);
      t.unref();
      return () => clearInterval(t);
    },
  };
}
