/**
 * Single use: remembers every grant id (`jti`) that opened a session until it could no longer be
 * valid (exp + tolerance), and persists the set so a reboot does not re-open old grants.
 * Bounded, and fail closed at both edges: when full of still-live ids it refuses to take another
 * (the caller refuses the grant) rather than forget one; when the file on disk is unreadable it
 * treats every grant issued before that moment as possibly used.
 * Must never report a jti as unused after it was consumed, within its lifetime.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../clock.ts';
import { LenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';

export interface ReplayCacheOptions {
  /** Where the set is persisted; undefined keeps it in memory (grant inspect, benches). */
  file: string | undefined;
  maxEntries: number;
  /** The grants clock tolerance, in seconds: an `iat` may be this far ahead of our clock. */
  clockToleranceSeconds: number;
  /** Longest grant lifetime: after lostAt + this + 2 × tolerance no earlier grant is valid anyway. */
  maxLifetimeSeconds: number;
  clock: Clock;
  logger: Logger;
}

export class ReplayCache {
  /** jti → forget-after (ms). */
  private readonly entries = new Map<string, number>();
  /**
   * Set when the persisted set was lost (corrupt file): grants issued before this moment (ms)
   * may have been used before the loss, so they count as replayed.
   */
  private lostAtMs: number | undefined;
  /**
   * The loss was found but not yet timed: at load the clock may still be in 1970 (no RTC). has()
   * only runs once the pipeline has trusted the clock, so the loss is timed there.
   */
  private lostPending = false;

  constructor(private readonly opts: ReplayCacheOptions) {
    this.load();
  }

  /** `iat` (seconds) lets a lost cache still refuse grants that could have been used before. */
  has(jti: string, iat?: number): boolean {
    const until = this.entries.get(jti);
    if (until !== undefined && until > this.opts.clock.now()) return true;
    if (this.lostPending) {
      this.lostPending = false;
      this.lostAtMs = this.opts.clock.now();
    }
    if (this.lostAtMs !== undefined) {
      // Any grant issued before the loss (plus the tolerance a cloud clock may run ahead) could
      // have been consumed and forgotten; without an iat we cannot tell, so: replayed.
      if (iat === undefined || iat * 1000 < this.lostAtMs + this.opts.clockToleranceSeconds * 1000) return true;
    }
    return false;
  }

  /**
   * Marks a jti used; persisted (fsync'd, atomic) before returning so a crash right after cannot
   * forget it. Throws ERR_REPLAY_CACHE_FULL when every slot holds a still-live id.
   */
  consume(jti: string, forgetAfterMs: number): void {
    this.prune();
    if (this.entries.size >= this.opts.maxEntries) {
      this.opts.logger.warn({ code: 'ERR_REPLAY_CACHE_FULL', maxEntries: this.opts.maxEntries }, 'replay cache full of live grant ids; refusing new grants until some expire');
      throw new LenscapError('ERR_REPLAY_CACHE_FULL', `replay cache holds ${this.entries.size} live grant ids (limit ${this.opts.maxEntries})`);
    }
    this.entries.set(jti, forgetAfterMs);
    try {
      this.persist();
    } catch (err) {
      // Not on disk means not remembered across a reboot: undo, and let the caller refuse.
      this.entries.delete(jti);
      throw err;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(): void {
    const now = this.opts.clock.now();
    for (const [jti, until] of this.entries) if (until <= now) this.entries.delete(jti);
    if (this.lostAtMs !== undefined && now > this.lostAtMs + (this.opts.maxLifetimeSeconds + 2 * this.opts.clockToleranceSeconds) * 1000) this.lostAtMs = undefined;
  }

  private load(): void {
    const { file, logger } = this.opts;
    if (!file || !existsSync(file)) return;
    try {
      // {lostAtMs?, entries: [[jti, forgetAfterMs], ...]}; lostAtMs survives restarts, so a second
      // reboot cannot launder grants from before the loss.
      const data = JSON.parse(readFileSync(file, 'utf8')) as { lostAtMs?: unknown; entries?: unknown };
      if (typeof data !== 'object' || data === null || !Array.isArray(data.entries)) throw new Error('not a replay cache');
      if (data.lostAtMs !== undefined) {
        if (typeof data.lostAtMs !== 'number') throw new Error('lostAtMs is not a number');
        this.lostAtMs = data.lostAtMs;
      }
      for (const item of data.entries) {
        if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'number') throw new Error('entry is not [jti, forgetAfterMs]');
        this.entries.set(item[0], item[1]);
      }
      this.prune();
    } catch (err) {
      this.entries.clear();
      this.lostAtMs = undefined;
      this.lostPending = true;
      logger.error(
        { code: 'REPLAY_CACHE_CORRUPT', err: (err as Error).message },
        'replay cache unreadable; grants issued before now are refused as replayed until they expire',
      );
    }
  }

  private persist(): void {
    const file = this.opts.file;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, JSON.stringify({ ...(this.lostAtMs !== undefined ? { lostAtMs: this.lostAtMs } : {}), entries: [...this.entries.entries()] }));
  }
}
