/**
 * The queue's two decisions, pure: which queued artifacts to let go when a bound is crossed, and
 * which one to upload next (or how long to wait). The queue (./queue.ts) feeds them its entries, its
 * bounds, the free space it measured and the time; they touch nothing.
 * Drop order: the oldest clip first; snapshots only once no clip is left to drop (a thumbnail is
 * small and is what an owner looks at first, a clip is big and replaceable by the next event).
 * Must never pick the artifact being uploaded right now for a drop, and never return a drop that a
 * bound does not call for.
 */
import { cappedWindow } from '../cloud/backoff.ts';
import type { DropReason } from './codes.ts';

export interface QueueBounds {
  /** Sum of queued sealed bytes. */
  maxBytes: number;
  /** Queued artifacts. */
  maxCount: number;
  /** Free bytes to keep on the spool's filesystem. */
  minFreeBytes: number;
}

/** What the decisions need of one queued artifact. */
export interface QueuedView {
  id: string;
  kind: 'snapshot' | 'clip';
  size: number;
  /** ms epoch the queue accepted it (ties: startedAt, then id). */
  queuedAt: number;
  startedAt: number;
  /** Earliest time of the next attempt (ms epoch); 0 = now. */
  nextAt: number;
}

export interface Drop {
  id: string;
  reason: DropReason;
}

function olderFirst(a: QueuedView, b: QueuedView): number {
  return a.queuedAt - b.queuedAt || a.startedAt - b.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The artifacts to drop so that count ≤ maxCount, bytes ≤ maxBytes and free space ≥ minFreeBytes
 * (dropping one frees its size on disk). `freeBytes` undefined: the free space is unknown (statfs
 * failed) and that bound is not applied. `busy` is the id being uploaded: never dropped, still counted.
 * An artifact alone larger than maxBytes is dropped as `too_large` whatever else holds.
 */
export function planDrops(
  entries: readonly QueuedView[],
  bounds: QueueBounds,
  freeBytes: number | undefined,
  busy?: string,
): Drop[] {
  const drops: Drop[] = [];
  const gone = new Set<string>();
  let count = entries.length;
  let bytes = 0;
  for (const e of entries) bytes += e.size;
  let free = freeBytes;
  for (const e of entries) {
    if (e.size > bounds.maxBytes && e.id !== busy) {
      drops.push({ id: e.id, reason: 'too_large' });
      gone.add(e.id);
      count--;
      bytes -= e.size;
      if (free !== undefined) free += e.size;
    }
  }
  const candidates = entries
    .filter((e) => e.id !== busy && !gone.has(e.id))
    .sort((a, b) => (a.kind === b.kind ? olderFirst(a, b) : a.kind === 'clip' ? -1 : 1));
  for (const e of candidates) {
    const reason: DropReason | undefined =
      count > bounds.maxCount
        ? 'count'
        : bytes > bounds.maxBytes
          ? 'bytes'
          : free !== undefined && free < bounds.minFreeBytes
            ? 'free_space'
            : undefined;
    if (!reason) break;
    drops.push({ id: e.id, reason });
    count--;
    bytes -= e.size;
    if (free !== undefined) free += e.size;
  }
  return drops;
}

export type NextStep =
  | { kind: 'upload'; id: string }
  /** Nothing is due: look again in `ms` (the earliest retry time). */
  | { kind: 'wait'; ms: number }
  | { kind: 'idle' };

/**
 * The next artifact to upload at `now`: among those due, snapshots before clips (the owner sees
 * thumbnails first and they are small), then the oldest. None due: wait for the earliest.
 */
export function nextUpload(entries: readonly QueuedView[], now: number): NextStep {
  let best: QueuedView | undefined;
  let earliest = Number.POSITIVE_INFINITY;
  for (const e of entries) {
    if (e.nextAt > now) {
      earliest = Math.min(earliest, e.nextAt);
      continue;
    }
    if (!best || (e.kind !== best.kind ? e.kind === 'snapshot' : olderFirst(e, best) < 0)) best = e;
  }
  if (best) return { kind: 'upload', id: best.id };
  if (earliest !== Number.POSITIVE_INFINITY) return { kind: 'wait', ms: earliest - now };
  return { kind: 'idle' };
}

/**
 * Delay before retry number `attempts` (1 = after the first failure): full jitter over the cloud
 * link's capped window, random(0, min(cap, base·2^(attempts-1))), never below `floorMs` so a
 * failing store is not hammered in a tight loop.
 */
export function retryDelay(
  attempts: number,
  opts: { baseMs: number; capMs: number; floorMs?: number },
  random: () => number,
): number {
  const window = cappedWindow(opts.baseMs, opts.capMs, attempts - 1);
  return Math.max(opts.floorMs ?? 0, Math.floor(random() * window));
}
