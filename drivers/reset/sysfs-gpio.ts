/**
 * A factory reset button on a GPIO read through sysfs, polled. A press counts once it has been
 * held for `holdMs` (a brush against the button must not wipe the owner); one press per hold.
 * An unreadable pin is never a press (a reset is the destructive direction). Read-only.
 */
import { readFileSync } from 'node:fs';
import type { ResetInput } from './types.ts';

export interface GpioResetOptions {
  path: string;
  activeLow?: boolean;
  holdMs?: number;
  pollMs?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

export function createGpioResetInput(opts: GpioResetOptions): ResetInput {
  const now = opts.now ?? Date.now;
  let reported = false;
  const pressed = (): boolean => {
    try {
      const v = readFileSync(opts.path, 'utf8').trim();
      if (v !== '0' && v !== '1') throw new Error(`unexpected GPIO value ${JSON.stringify(v.slice(0, 8))}`);
      reported = false;
      return (v === '1') !== (opts.activeLow ?? true);
    } catch (err) {
      if (!reported) opts.onError?.(err as Error);
      reported = true;
      return false;
    }
  };
  return {
    name: `sysfs-gpio:${opts.path}`,
    watch(onPress) {
      let since: number | undefined;
      let fired = false;
      const t = setInterval(() => {
        if (!pressed()) {
          since = undefined;
          fired = false;
          return;
        }
        since ??= now();
        if (!fired && now() - since >= (opts.holdMs ?? 5000)) {
          fired = true;
          onPress();
        }
      }, opts.pollMs ?? 100);
      t.unref();
      return () => clearInterval(t);
    },
  };
}
