/**
 * Time and randomness as injected dependencies, so tests drive expiry, backoff and jitter
 * deterministically. Production code must take these from its deps, never call Date.now() or
 * Math.random() where a decision depends on them.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** Returns a float in [0, 1). */
export type Random = () => number;

export const systemClock: Clock = { now: () => Date.now() };
export const systemRandom: Random = () => Math.random();

/** A clock tests can move by hand. */
export class ManualClock implements Clock {
  constructor(private ms: number) {}
  now(): number {
    return this.ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
