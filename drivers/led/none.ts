/** A board without a status light: remembers the state (for tests/telemetry), touches nothing. */
import type { StatusLed } from './types.ts';

export function createNoLed(): StatusLed & { readonly on: boolean } {
  let on = false;
  return {
    name: 'none',
    get on() {
      return on;
    },
    set(v: boolean) {
      on = v;
    },
  };
}
