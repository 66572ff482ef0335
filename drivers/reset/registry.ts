/** Builds the reset input named by config (`none` or `sysfs-gpio`). */
import { createNoResetInput } from './none.ts';
import { createGpioResetInput } from './sysfs-gpio.ts';
import type { ResetInput } from './types.ts';

export function createResetInput(
  cfg: { driver: 'none' | 'sysfs-gpio'; path?: string; activeLow: boolean; holdMs: number; pollMs: number },
  onError?: (err: Error) => void,
): ResetInput {
  if (cfg.driver === 'none') return createNoResetInput();
  if (!cfg.path) throw new Error('owner.resetInput.path is required for the sysfs-gpio driver');
  return createGpioResetInput({
    path: cfg.path,
    activeLow: cfg.activeLow,
    holdMs: cfg.holdMs,
    pollMs: cfg.pollMs,
    ...(onError ? { onError } : {}),
  });
}
