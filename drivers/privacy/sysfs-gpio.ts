/**
 * A privacy switch on a GPIO read through sysfs (`/sys/class/gpio/gpioN/value`), polled. An
 * unreadable or unexpected value reads as privacy ON: a switch that cannot be read must not let
 * the camera stream. Read-only: never exports or configures the pin.
 */
import { readFileSync } from 'node:fs';
import type { PollTimers, PrivacySwitch } from './types.ts';

const systemTimers: PollTimers = {
  // unref: watching the switch never keeps the process alive on its own.
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

export interface GpioSwitchOptions {
  path: string;
  activeLow?: boolean;
  pollMs?: number;
  onError?: (err: Error) => void;
  /** The poll's timers (default: the system's); tests drive them with harness/test-clock.ts. */
  timers?: PollTimers;
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
      const timers = opts.timers ?? systemTimers;
      let last = read();
      const t = timers.setInterval(() => {
        const now = read();
        if (now !== last) {
          last = now;
          onChange(now);
        }
      }, opts.pollMs ?? 250);
      return () => timers.clearInterval(t);
    },
  };
}
