/**
 * Per-address limit on refused requests: after `perMinute` refusals in a sliding minute an
 * address is answered 429 without its token being looked at. Bounded memory: old entries are
 * pruned and the table has a hard cap.
 * Must never limit an accepted viewer, nor grow without bound.
 */
import type { Clock } from '../clock.ts';

export class RefusalRateLimit {
  private readonly hits = new Map<string, number[]>();
  constructor(
    private readonly perMinute: number,
    private readonly clock: Clock,
    private readonly maxAddresses = 10_000,
  ) {}

  limited(addr: string): boolean {
    return this.recent(addr).length >= this.perMinute;
  }

  record(addr: string): void {
    const list = this.recent(addr);
    list.push(this.clock.now());
    this.hits.set(addr, list);
    if (this.hits.size > this.maxAddresses) {
      // Drop the oldest address: a flood of spoofed sources must not grow memory without bound.
      const first = this.hits.keys().next().value;
      if (first !== undefined) this.hits.delete(first);
    }
  }

  private recent(addr: string): number[] {
    const cutoff = this.clock.now() - 60_000;
    const list = (this.hits.get(addr) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.hits.delete(addr);
    return list;
  }
}
