/**
 * Keeps a flood of unauthenticated junk from drowning the security events, the audit log and the
 * agent log that matter (above all the `wrong_audience` misroute alarm). Refusals that anyone can
 * cause without a valid signature are recorded once per (source, reason) per window and counted
 * otherwise; and across ALL sources at most `globalBudget` of them are recorded one by one per
 * window — beyond it they are counted per reason (source `*`), so a flood from ten thousand
 * addresses costs what a flood from a handful does. Counts go out with the next record of that key,
 * or as summaries when the window is flushed.
 * This budget is on *recording* only: admission is never touched (a valid grant is decided the
 * same way whatever others send).
 * The grant gate keys a second instance by jti for signed refusals: repeats of one and the same
 * grant are counted, distinct signed grants never are.
 * Must never damp a refusal of a distinct correctly signed grant (those are the cloud's own word,
 * and each one already cost a signature verification), and never lose a count.
 */
import type { RefusalReason } from './reasons.ts';

/** Source of a summary counted over the global budget: many sources, not one. */
export const MANY_SOURCES = '*';

export interface DampedSummary {
  /** The source, or `*` for refusals counted over the global budget (any source). */
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
  private globalStart = Number.NEGATIVE_INFINITY;
  private globalRecorded = 0;
  private readonly overBudget = new Map<RefusalReason, number>();

  constructor(
    private readonly windowMs = 10_000,
    private readonly maxKeys = 1024,
    /** Unsigned refusals recorded one by one per window, across all sources. */
    private readonly globalBudget = 20,
  ) {}

  /**
   * Decides whether this refusal is recorded individually. Returns `record: false` when it was
   * counted instead; `summaries` carry finished windows' counts to report now.
   */
  admit(source: string, reason: RefusalReason, now: number): { record: boolean; summaries: DampedSummary[] } {
    const summaries = this.endGlobalWindow(now, false);
    const key = `${reason}\u0000${source}`;
    const slot = this.slots.get(key);
    if (slot && now - slot.windowStart < this.windowMs) {
      slot.suppressed++;
      return { record: false, summaries };
    }
    if (slot) {
      this.slots.delete(key);
      if (slot.suppressed > 0)
        summaries.push({ source, reason, suppressed: slot.suppressed, since: slot.windowStart });
    }
    if (this.globalRecorded >= this.globalBudget) {
      this.overBudget.set(reason, (this.overBudget.get(reason) ?? 0) + 1);
      this.nextFlushAt = Math.min(this.nextFlushAt, this.globalStart + this.windowMs);
      return { record: false, summaries };
    }
    this.globalRecorded++;
    this.slots.set(key, { windowStart: now, suppressed: 0 });
    this.nextFlushAt = Math.min(this.nextFlushAt, now + this.windowMs);
    return { record: true, summaries };
  }

  /** Starts a new global window when the current one is over (or `force`): its counts, per reason. */
  private endGlobalWindow(now: number, force: boolean): DampedSummary[] {
    if (!force && now - this.globalStart < this.windowMs) return [];
    const out: DampedSummary[] = [];
    for (const [reason, suppressed] of this.overBudget)
      out.push({ source: MANY_SOURCES, reason, suppressed, since: this.globalStart });
    this.overBudget.clear();
    this.globalStart = now;
    this.globalRecorded = 0;
    return out;
  }

  /**
   * Finished windows with a count, removed from the table. `force` ends every window (shutdown,
   * or too many keys: a flood from many sources must not grow memory without bound).
   */
  flush(now: number, force = false): DampedSummary[] {
    if (!force && now < this.nextFlushAt && this.slots.size <= this.maxKeys) return [];
    const all = force || this.slots.size > this.maxKeys;
    const out: DampedSummary[] = this.endGlobalWindow(now, force);
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
    if (this.overBudget.size > 0)
      this.nextFlushAt = Math.min(this.nextFlushAt, this.globalStart + this.windowMs);
    return out;
  }
}
