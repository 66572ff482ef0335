/**
 * Wrong claim proofs cost time: the first few failures are free (typos), then each one locks
 * claiming for twice as long as the one before, up to a ceiling. A success clears the count.
 * Pure over an injected clock; kept in memory (an attacker cannot restart the camera remotely,
 * and a refused attempt must change nothing on disk).
 */
import type { Clock } from '../clock.ts';

export interface LockoutPolicy {
  freeAttempts: number;
  baseSeconds: number;
  maxSeconds: number;
}

export class ClaimLockout {
  private failures = 0;
  private until = 0;

  constructor(
    private readonly policy: LockoutPolicy,
    private readonly clock: Clock,
  ) {}

  /** Milliseconds left in the current lockout (0: an attempt may be made). */
  remainingMs(): number {
    return Math.max(0, this.until - this.clock.now());
  }

  get failureCount(): number {
    return this.failures;
  }

  /** Records a wrong proof; returns the lockout now in force, in seconds (0 while still free). */
  fail(): number {
    this.failures++;
    const over = this.failures - this.policy.freeAttempts;
    if (over <= 0) return 0;
    const seconds = Math.min(this.policy.maxSeconds, this.policy.baseSeconds * 2 ** Math.min(over - 1, 30));
    this.until = this.clock.now() + seconds * 1000;
    return seconds;
  }

  succeed(): void {
    this.failures = 0;
    this.until = 0;
  }
}
