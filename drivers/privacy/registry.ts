/** Builds the privacy switch named by config (`none` or `sysfs-gpio`). */
import { createNoSwitch } from './none.ts';
import { createGpioSwitch } from './sysfs-gpio.ts';
import type { PollTimers, PrivacySwitch } from './types.ts';

export function createPrivacySwitch(
  cfg: { driver: 'none' | 'sysfs-gpio'; path?: string; activeLow: boolean; pollMs: number },
  onError?: (err: Error) => void,
  timers?: PollTimers,
): PrivacySwitch {
  if (cfg.driver === 'none') return createNoSwitch();
  if (!cfg.path) throw new Error('privacy.switch.path is required for the sysfs-gpio driver');
  return createGpioSwitch({
    path: cfg.path,
    activeLow: cfg.activeLow,
    pollMs: cfg.pollMs,
    ...(onError ? { onError } : {}),
    ...(timers ? { timers } : {}),
  });
}
