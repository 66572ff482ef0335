/**
 * Beyond one machine, by simulation (`bench/storm.ts --simulate 100000 --connect-budget 500`): every
 * device runs the agent's own reconnect policy (agent/cloud/backoff.ts, on a simulated clock and a
 * seeded random) after an outage that drops the whole fleet, against a broker that accepts at most
 * `budget` connects per second (AWS IoT Core's default: 500 per second per account; over it the
 * connect is refused, which the device sees as a failed attempt) and 1 connect per second per client
 * id. Reports the offered attempts per second against the budget, the time until 99 % are back, and
 * which `cloud.backoff` settings keep a fleet of that size under the budget. Pure and deterministic:
 * the same arguments give the same figures.
 * Must never depend on wall time (a 100k-device schedule runs in seconds of CPU).
 */
import { Backoff, type BackoffOptions } from '../agent/cloud/backoff.ts';

export interface SimOptions {
  devices: number;
  /** Accepted connects per second (per account). */
  budget: number;
  /** The broker is unreachable for this long after the drop. */
  outageS: number;
  backoff: BackoffOptions;
  seed?: number;
  /** Give up simulating after this long (simulated seconds). */
  horizonS?: number;
}

export interface SimResult {
  devices: number;
  budget: number;
  outageS: number;
  /** Highest attempts offered in one second after the broker is back, and that over the budget. */
  peakOfferedPerSec: number;
  peakOverBudget: number;
  /** Attempts refused for the rate limit. */
  throttled: number;
  attempts: number;
  /** Attempts by one device less than 1 s after its previous one (the per-client-id limit). */
  perClientIdViolations: number;
  /** From the end of the outage. */
  t50S: number | null;
  t99S: number | null;
  t100S: number | null;
  back: number;
}

/** A small seeded PRNG (mulberry32): reproducible schedules. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Min-heap of (time, device) in typed arrays: 100k devices, millions of events. */
class Heap {
  private t: Float64Array;
  private id: Int32Array;
  size = 0;
  constructor(cap: number) {
    this.t = new Float64Array(cap);
    this.id = new Int32Array(cap);
  }
  push(time: number, dev: number) {
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.t[p]! <= time) break;
      this.t[i] = this.t[p]!;
      this.id[i] = this.id[p]!;
      i = p;
    }
    this.t[i] = time;
    this.id[i] = dev;
  }
  pop(): [number, number] {
    const top: [number, number] = [this.t[0]!, this.id[0]!];
    const lt = this.t[--this.size]!;
    const lid = this.id[this.size]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= this.size) break;
      if (c + 1 < this.size && this.t[c + 1]! < this.t[c]!) c++;
      if (this.t[c]! >= lt) break;
      this.t[i] = this.t[c]!;
      this.id[i] = this.id[c]!;
      i = c;
    }
    this.t[i] = lt;
    this.id[i] = lid;
    return top;
  }
}

export function simulate(o: SimOptions): SimResult {
  const n = o.devices;
  const horizonMs = (o.horizonS ?? 6 * 3600) * 1000;
  const outageEnd = o.outageS * 1000;
  let now = 0;
  const clock = { now: () => now };
  const random = seeded(o.seed ?? 1);
  const heap = new Heap(n);
  const policies: Backoff[] = new Array(n);
  const last = new Float64Array(n).fill(-Infinity);
  // Everyone was up for an hour; the drop happens at t = 0.
  now = -3_600_000;
  for (let i = 0; i < n; i++) {
    const b = new Backoff(o.backoff, clock, random);
    b.initial();
    b.connected();
    policies[i] = b;
  }
  now = 0;
  for (let i = 0; i < n; i++) heap.push(policies[i]!.next({ kind: 'network' }).delayMs, i);

  const offered = new Map<number, number>();
  const accepted = new Map<number, number>();
  const backTimes: number[] = [];
  let attempts = 0;
  let throttled = 0;
  let violations = 0;
  while (heap.size > 0) {
    const [t, dev] = heap.pop();
    if (t > horizonMs) break;
    now = t;
    attempts++;
    if (t < outageEnd) {
      heap.push(t + policies[dev]!.next({ kind: 'network' }).delayMs, dev);
      continue;
    }
    // Only attempts that reach the service count against its per-client-id limit.
    if (t - last[dev]! < 1000) violations++;
    last[dev] = t;
    const sec = Math.floor((t - outageEnd) / 1000);
    offered.set(sec, (offered.get(sec) ?? 0) + 1);
    const acc = accepted.get(sec) ?? 0;
    if (acc >= o.budget) {
      throttled++;
      heap.push(t + policies[dev]!.next({ kind: 'network' }).delayMs, dev);
      continue;
    }
    accepted.set(sec, acc + 1);
    backTimes.push((t - outageEnd) / 1000);
  }
  backTimes.sort((a, b) => a - b);
  const q = (p: number) => (backTimes.length >= Math.ceil(p * n) ? backTimes[Math.ceil(p * n) - 1]! : null);
  const peak = Math.max(0, ...offered.values());
  return {
    devices: n,
    budget: o.budget,
    outageS: o.outageS,
    peakOfferedPerSec: peak,
    peakOverBudget: peak / o.budget,
    throttled,
    attempts,
    perClientIdViolations: violations,
    t50S: q(0.5),
    t99S: q(0.99),
    t100S: q(1),
    back: backTimes.length,
  };
}

export interface Recommendation {
  backoff: Pick<BackoffOptions, 'baseMs' | 'capMs' | 'dropDelayMaxMs' | 'initialDelayMaxMs'>;
  result: SimResult;
}

/**
 * Tries wider windows until the offered peak stays under the budget: the first retry must be spread
 * over at least devices / budget seconds (dropDelayMaxMs, and initialDelayMaxMs for a power cut),
 * and capMs at least that (the drop window is capped by it); base ≥ 1 s keeps the per-client-id limit.
 */
export function recommend(o: Omit<SimOptions, 'backoff'>, base: BackoffOptions): Recommendation[] {
  const spreadS = Math.ceil(o.devices / o.budget);
  const out: Recommendation[] = [];
  for (const factor of [0.5, 1, 1.5, 2, 3]) {
    const window = Math.max(base.initialDelayMaxMs, Math.round(spreadS * factor) * 1000);
    const b = {
      baseMs: Math.max(1000, base.baseMs),
      capMs: Math.max(base.capMs, window),
      dropDelayMaxMs: window,
      initialDelayMaxMs: window,
    };
    out.push({ backoff: b, result: simulate({ ...o, backoff: { ...base, ...b } }) });
  }
  return out;
}
