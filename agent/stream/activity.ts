/**
 * Counts what is live (viewer sessions, pushes) and keeps the status light on while anything is.
 * The light follows the count, never the other way round.
 */
import type { StatusLed } from '../../drivers/led/types.ts';

export class Activity {
  private count = 0;
  constructor(private readonly led: StatusLed) {
    led.set(false);
  }
  /** Marks one activity begun; call the returned function exactly once when it ends. */
  begin(): () => void {
    this.count++;
    this.led.set(true);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.count--;
      if (this.count === 0) this.led.set(false);
    };
  }
  get active(): number {
    return this.count;
  }
}
