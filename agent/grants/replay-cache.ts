/**
 * Single use: remembers every grant id (`jti`) that opened a session until it could no longer be
 * valid (exp + tolerance), and keeps it across reboots so a reboot does not re-open old grants.
 * Durability costs one fsync per accept, shared with the audit log: the accept line (jti, exp) in
 * the fsync'd audit log *is* the replay record. At start the set is rebuilt from a snapshot
 * (written atomically whenever the audit log rotates, so no live id leaves with an old generation)
 * plus the accept lines of the audit log generations.
 * Bounded, and fail closed at both edges: when full of still-live ids it refuses to take another
 * (the caller refuses the grant) rather than forget one; when the file on disk is unreadable it
 * treats every grant issued before that moment as possibly used.
 * Must never report a jti as unused after it was consumed, within its lifetime.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../clock.ts';
import { TORN_TAIL_MARKER } from '../audit/decision-log.ts';
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
  /** Audit log generations (oldest first) whose accept lines are replay records. */
  journalFiles?: readonly string[];
  clock: Clock;
  logger: Logger;
}

export class ReplayCache {
  /** jti → forget-after (ms). */
  private readonly entries = new Map<string, number>();
  /** When the last sweep of expired ids ran (consume sweeps at most once a second). */
  private prunedAt = Number.NEGATIVE_INFINITY;
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
      try {
        this.snapshot();
      } catch {
        /* the file stays corrupt: the next start times the loss again, later — still closed */
      }
    }
    if (this.lostAtMs !== undefined) {
      // Any grant issued before the loss (plus the tolerance a cloud clock may run ahead) could
      // have been consumed and forgotten; without an iat we cannot tell, so: replayed.
      if (iat === undefined || iat * 1000 < this.lostAtMs + this.opts.clockToleranceSeconds * 1000)
        return true;
    }
    return false;
  }

  /**
   * Marks a jti used, in memory. Durability is the caller's accept line in the audit log, fsync'd
   * before the accept returns. Throws ERR_REPLAY_CACHE_FULL when every slot holds a live id.
   */
  consume(jti: string, forgetAfterMs: number): void {
    // The sweep walks every live id: once a second is enough (has() compares each id's own time,
    // so an id past its time is never "used" meanwhile), and always before calling the cache full.
    const now = this.opts.clock.now();
    if (now - this.prunedAt >= 1000 || now < this.prunedAt || this.entries.size >= this.opts.maxEntries)
      this.prune();
    if (this.entries.size >= this.opts.maxEntries) {
      this.opts.logger.warn(
        { code: 'ERR_REPLAY_CACHE_FULL', maxEntries: this.opts.maxEntries },
        'replay cache full of live grant ids; refusing new grants until some expire',
      );
      throw new LenscapError(
        'ERR_REPLAY_CACHE_FULL',
        `replay cache holds ${this.entries.size} live grant ids (limit ${this.opts.maxEntries})`,
      );
    }
    this.entries.set(jti, forgetAfterMs);
  }

  /** Writes every live id atomically (audit rotation, shutdown). Throws on I/O failure. */
  snapshot(): void {
    this.prune();
    this.persist();
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(): void {
    const now = this.opts.clock.now();
    this.prunedAt = now;
    for (const [jti, until] of this.entries) if (until <= now) this.entries.delete(jti);
    if (
      this.lostAtMs !== undefined &&
      now > this.lostAtMs + (this.opts.maxLifetimeSeconds + 2 * this.opts.clockToleranceSeconds) * 1000
    )
      this.lostAtMs = undefined;
  }

  private load(): void {
    this.loadSnapshot();
    for (const f of this.opts.journalFiles ?? []) this.loadJournal(f);
    this.prune();
  }

  /** Accept lines of an audit log generation. Only the last line may be torn (a cut mid-write). */
  private loadJournal(file: string): void {
    if (!existsSync(file)) return;
    const lines = readFileSync(file, 'utf8').split('\n');
    const tol = this.opts.clockToleranceSeconds;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      // Every line is parsed: a damaged line may have lost the very word "accept".
      if (line.length === 0 || line === TORN_TAIL_MARKER) continue;
      let rec: { decision?: unknown; jti?: unknown; exp?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        // A torn tail (last line, or marked by the log on reopen) is an accept that never returned.
        if (i >= lines.length - 2 || lines[i + 1] === TORN_TAIL_MARKER) continue;
        this.markLost(`audit line ${i + 1} of ${file} is unreadable`);
        continue;
      }
      if (rec.decision === 'accept' && typeof rec.jti === 'string' && typeof rec.exp === 'number') {
        this.entries.set(rec.jti, Math.max(this.entries.get(rec.jti) ?? 0, (rec.exp + tol) * 1000));
      }
    }
  }

  private markLost(why: string): void {
    this.lostAtMs = undefined;
    this.lostPending = true;
    this.opts.logger.error(
      { code: 'REPLAY_CACHE_CORRUPT', err: why },
      'replay records unreadable; grants issued before now are refused as replayed until they expire',
    );
  }

  private loadSnapshot(): void {
    const { file } = this.opts;
    if (!file || !existsSync(file)) return;
    try {
      // {lostAtMs?, entries: [[jti, forgetAfterMs], ...]}; lostAtMs survives restarts, so a second
      // reboot cannot launder grants from before the loss.
      const data = JSON.parse(readFileSync(file, 'utf8')) as { lostAtMs?: unknown; entries?: unknown };
      if (typeof data !== 'object' || data === null || !Array.isArray(data.entries))
        throw new Error('not a replay cache');
      if (data.lostAtMs !== undefined) {
        if (typeof data.lostAtMs !== 'number') throw new Error('lostAtMs is not a number');
        this.lostAtMs = data.lostAtMs;
      }
      for (const item of data.entries) {
        if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'number')
          throw new Error('entry is not [jti, forgetAfterMs]');
        this.entries.set(item[0], item[1]);
      }
    } catch (err) {
      this.entries.clear();
      this.markLost((err as Error).message);
    }
  }

  private persist(): void {
    const file = this.opts.file;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(
      file,
      JSON.stringify({
        ...(this.lostAtMs !== undefined ? { lostAtMs: this.lostAtMs } : {}),
        entries: [...this.entries.entries()],
      }),
    );
  }
}
