/**
 * The manual implementation of the agent's one time seam (agent/clock.ts `Time`): now() stands
 * still until the test moves it, and timeouts/intervals fire only when `advance` passes their due
 * time, in due order (equal times in scheduling order), with the clock set to each due time as it
 * fires. Tests that used to sleep a fixed real time and count what happened run on this instead.
 * Must never fire a timer early, twice (timeouts), or after it was cleared.
 */
import type { Time, TimerHandle } from '../agent/clock.ts';

interface Pending {
  id: number;
  at: number;
  fn: () => void;
  every?: number;
}

export class TestClock implements Time {
  private ms: number;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(startMs = 1_700_000_000_000) {
    this.ms = startMs;
  }

  now = (): number => this.ms;

  setTimeout = (fn: () => void, ms: number): TimerHandle => this.add(fn, ms);
  setInterval = (fn: () => void, ms: number): TimerHandle => this.add(fn, ms, Math.max(1, ms));
  clearTimeout = (handle: TimerHandle | undefined): void => this.clear(handle);
  clearInterval = (handle: TimerHandle | undefined): void => this.clear(handle);

  /** Timers not yet fired or cleared. */
  get timers(): number {
    return this.pending.size;
  }

  /** Moves the clock without firing anything (a wall-clock jump, e.g. NTP). */
  set(ms: number): void {
    this.ms = ms;
  }

  /**
   * Moves the clock forward by `ms`, firing every timer that falls due on the way. Between timers
   * it lets pending promise callbacks run, so async work a timer starts settles in order.
   */
  async advance(ms: number): Promise<void> {
    const end = this.ms + ms;
    for (;;) {
      await flush();
      const next = this.due(end);
      if (!next) break;
      this.ms = next.at;
      if (next.every) next.at += next.every;
      else this.pending.delete(next.id);
      next.fn();
    }
    this.ms = end;
    await flush();
  }

  private due(end: number): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.pending.values())
      if (p.at <= end && (!best || p.at < best.at || (p.at === best.at && p.id < best.id))) best = p;
    return best;
  }

  private add(fn: () => void, ms: number, every?: number): TimerHandle {
    const id = ++this.seq;
    const p: Pending = { id, at: this.ms + Math.max(0, ms), fn };
    if (every !== undefined) p.every = every;
    this.pending.set(id, p);
    return { id, unref() {}, ref() {} };
  }

  private clear(handle: TimerHandle | undefined): void {
    const id = (handle as { id?: number } | undefined)?.id;
    if (id !== undefined) this.pending.delete(id);
  }
}

/** Lets queued promise callbacks and I/O callbacks already due run (a macrotask turn). */
function flush(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
