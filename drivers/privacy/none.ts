/** No hardware switch: always off, never changes. */
import type { PrivacySwitch } from './types.ts';

export function createNoSwitch(): PrivacySwitch {
  return { name: 'none', read: () => false, watch: () => () => undefined };
}
