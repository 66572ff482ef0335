/**
 * Single use: remembers every grant id (`jti`) that opened a session until it could no longer be
 * valid (exp + tolerance), and persists the set so a reboot does not re-open old grants.
 * Bounded: when full, the entries closest to expiry go first — but an entry is never dropped
 * while it could still be replayed unless the bound forces it, which is logged.
 * Must never report a jti as unused after it was consumed, within its lifetime.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';

export class ReplayCache {
  /** jti → forget-after (ms). Map keeps insertion order for cheap pruning. */
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly file: string | undefined,
    private readonly maxEntries: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.load();
  }

  has(jti: string): boolean {
    const until = this.entries.get(jti);
    return until !== undefined && until > this.clock.now();
  }

  /** Marks a jti used; persisted before returning so a crash right after cannot forget it. */
  consume(jti: string, forgetAfterMs: number): void {
    this.prune();
    if (this.entries.size >= this.maxEntries) {
      const [oldest] = [...this.entries.entries()].sort((a, b) => a[1] - b[1]);
      if (oldest) {
        this.entries.delete(oldest[0]);
        this.logger.warn({ code: 'REPLAY_CACHE_FULL', maxEntries: this.maxEntries }, 'replay cache full: dropped the entry closest to expiry');
      }
    }
    this.entries.set(jti, forgetAfterMs);
    this.persist();
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [jti, until] of this.entries) if (until <= now) this.entries.delete(jti);
  }

  private load(): void {
    if (!this.file || !existsSync(this.file)) return;
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      if (!Array.isArray(data)) throw new Error('not an array');
      for (const item of data) {
        if (Array.isArray(item) && typeof item[0] === 'string' && typeof item[1] === 'number') this.entries.set(item[0], item[1]);
      }
      this.prune();
    } catch (err) {
      // A corrupt cache cannot be trusted to be complete: log loudly. Grants are short-lived, and
      // the build-time clock check plus maxLifetime bound what could be replayed.
      this.logger.error({ code: 'REPLAY_CACHE_CORRUPT', err: (err as Error).message }, 'replay cache unreadable; starting empty');
    }
  }

  private persist(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, JSON.stringify([...this.entries.entries()]));
  }
}
