/**
 * Time and randomness as injected dependencies, so tests drive expiry, backoff, retries and
 * periodic work deterministically. `Time` is the one time seam: reading the clock and scheduling
 * on it (timeouts and intervals); `Clock` is its read-only view for pure decisions.
 * Production code must take these from its deps, never call Date.now(), setTimeout/setInterval
 * or Math.random() where a decision or a schedule depends on them (harness/test-clock.ts
 * is the manual implementation tests drive).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** What a timer call returns: opaque to the caller (Node's Timeout under the system clock). */
export type TimerHandle = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

/** The one time seam: now() plus timeouts and intervals on the same clock. */
export interface Time extends Clock, Timers {}

/** Lets the process exit with the timer pending (Node's `unref`); a no-op for other handles. */
export function unrefTimer(handle: TimerHandle): void {
  (handle as { unref?: () => void } | undefined)?.unref?.();
}

/** The real clock and timers. */
export const systemClock: Time = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout | undefined),
};

/** Returns a float in [0, 1). */
export type Random = () => number;

export const systemRandom: Random = () => Math.random();

/**
 * A clock whose now() tests move by hand while its timers stay the real ones (tests that check a
 * decision at a given time). Tests that drive timers too use harness/test-clock.ts.
 */
export class ManualClock implements Time {
  constructor(private ms: number) {}
  now(): number {
    return this.ms;
  }
  setTimeout = systemClock.setTimeout;
  clearTimeout = systemClock.clearTimeout;
  setInterval = systemClock.setInterval;
  clearInterval = systemClock.clearInterval;
  set(ms: number): void {
    this.ms = ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
