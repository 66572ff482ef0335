/**
 * Keeps a flood of unauthenticated junk from drowning the security events and the audit log that
 * matter (above all the `wrong_audience` misroute alarm): refusals that anyone can cause without a
 * valid signature are recorded once per (source, reason) per window and counted otherwise; the
 * count goes out with the next record of that key, or when the window is flushed.
 * Must never damp a refusal of a correctly signed grant (those are the cloud's own word, and each
 * one already cost a signature verification), and never lose a count.
 */
import type { RefusalReason } from './reasons.ts';

export interface DampedSummary {
  source: string;
  reason: RefusalReason;
  /** Refusals not recorded individually in the window that ended. */
  suppressed: number;
  /** ms since the epoch. */
  since: number;
}

interface Slot {
  windowStart: number;
  suppressed: number;
}

export class RefusalDamper {
  private readonly slots = new Map<string, Slot>();
  private nextFlushAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly windowMs = 10_000,
    private readonly maxKeys = 1024,
  ) {}

  /**
   * Decides whether this refusal is recorded individually. Returns `record: false` when it was
   * counted instead; `summary` carries a finished window's count for the same key, to report now.
   */
  admit(source: string, reason: RefusalReason, now: number): { record: boolean; summary?: DampedSummary } {
    const key = `${reason}\u0000${source}`;
    const slot = this.slots.get(key);
    if (slot && now - slot.windowStart < this.windowMs) {
      slot.suppressed++;
      return { record: false };
    }
    const summary =
      slot && slot.suppressed > 0
        ? { source, reason, suppressed: slot.suppressed, since: slot.windowStart }
        : undefined;
    this.slots.delete(key);
    this.slots.set(key, { windowStart: now, suppressed: 0 });
    this.nextFlushAt = Math.min(this.nextFlushAt, now + this.windowMs);
    return summary ? { record: true, summary } : { record: true };
  }

  /**
   * Finished windows with a count, removed from the table. `force` ends every window (shutdown,
   * or too many keys: a flood from many sources must not grow memory without bound).
   */
  flush(now: number, force = false): DampedSummary[] {
    if (!force && now < this.nextFlushAt && this.slots.size <= this.maxKeys) return [];
    const all = force || this.slots.size > this.maxKeys;
    const out: DampedSummary[] = [];
    this.nextFlushAt = Number.POSITIVE_INFINITY;
    for (const [key, slot] of this.slots) {
      if (all || now - slot.windowStart >= this.windowMs) {
        this.slots.delete(key);
        if (slot.suppressed > 0) {
          const [reason, source] = key.split('\u0000') as [RefusalReason, string];
          out.push({ source, reason, suppressed: slot.suppressed, since: slot.windowStart });
        }
      } else {
        this.nextFlushAt = Math.min(this.nextFlushAt, slot.windowStart + this.windowMs);
      }
    }
    return out;
  }
}
