/**
 * The on-disk queue of security events awaiting delivery to the cloud (`events`, QoS 1). An
 * append-only JSONL log: event lines `{"s":seq,"k":class,"e":{...}}` and mark lines
 * `{"a":seq,"d":n,"t":{type:n}}` (removed through seq) or `{"x":seq,"d":n,"t":{...}}` (that one
 * event dropped); n events dropped and not yet reported, by type in t. Bounded by count and bytes:
 * the oldest event of the lowest class present goes first (junk, then normal, then critical — see
 * EventClass), so a flood of junk never evicts the misroute alarm or an identity/trust event; the
 * drop count, by type, is itself reported as an `events_dropped` event ahead of the rest.
 * Events leave the queue only after the broker acknowledged them, in order; a restart reloads it.
 * Must never drop an event silently and never throw from emit() (the grant gate calls it).
 */
import { redactValue } from '../redact.ts';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { defaultEventClass, type EventClass, type EventSink, type SecurityEvent } from './events.ts';

export interface EventQueueOptions {
  /** paths.eventQueue from state-layout. */
  file: string;
  serial: string;
  maxEvents: number;
  maxBytes: number;
  clock: Clock;
  logger: Logger;
  /** Publishes in flight at once while delivering. */
  window?: number;
}

/** Publishes one event payload (JSON) and resolves once the broker acknowledged it (PUBACK). */
export type PublishEvent = (json: string) => Promise<void>;

interface Item {
  seq: number;
  json: string;
  bytes: number;
  /** 0 junk, 1 normal, 2 critical: the drop order. */
  rank: number;
  type: string;
}

const RANK: Record<EventClass, number> = { junk: 0, normal: 1, critical: 2 };
/** The queue-full warning goes to the log at most this often (a flood must not flood the log). */
const DROP_LOG_INTERVAL_MS = 10_000;

/** A single event larger than this has its `data` replaced: a queue slot is not a file store. */
const MAX_EVENT_BYTES = 16 * 1024;
/** Events may use this share of maxBytes; the rest is room for marks, so rewrites are amortised. */
const EVENT_SHARE = 0.9;

export class EventQueue implements EventSink {
  private items: Item[] = [];
  private head = 0;
  private seq = 0;
  private pendingBytes = 0;
  private fileBytes = 0;
  private droppedUnreported = 0;
  private droppedTotal = 0;
  /** Unreported drops by event type (persisted in marks, reported in events_dropped). */
  private droppedByType: Record<string, number> = {};
  private readonly droppedByTypeTotal: Record<string, number> = {};
  private readonly rankCounts = [0, 0, 0];
  private dropLog = { at: Number.NEGATIVE_INFINITY, since: 0 };
  private fd: number | undefined;
  private delivering = false;
  private again = false;
  private listener: (() => void) | undefined;
  private readonly log: Logger;

  private constructor(private readonly opts: EventQueueOptions) {
    this.log = opts.logger;
  }

  /** Opens (and replays) the queue file, creating it if absent. */
  static open(opts: EventQueueOptions): EventQueue {
    const q = new EventQueue(opts);
    q.load();
    return q;
  }

  /** Events waiting (not counting a pending drop report). */
  get size(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.pendingBytes;
  }

  /** Drops not yet reported to the cloud. */
  get dropped(): number {
    return this.droppedUnreported;
  }

  /** Drops since this process opened the queue (telemetry). */
  get droppedSinceOpen(): number {
    return this.droppedTotal;
  }

  /** Drops since this process opened the queue, by event type (telemetry). */
  get droppedByTypeSinceOpen(): Readonly<Record<string, number>> {
    return this.droppedByTypeTotal;
  }

  /** Called after each emit (the link uses it to start a delivery when online). */
  onEnqueued(listener: (() => void) | undefined): void {
    this.listener = listener;
  }

  emit(raw: SecurityEvent, cls?: EventClass): void {
    try {
      // One redaction for everything that leaves the camera as an event (agent/redact.ts).
      const event = redactValue(raw);
      let json = JSON.stringify(event);
      if (Buffer.byteLength(json) > MAX_EVENT_BYTES)
        json = JSON.stringify({ ...event, data: { truncated: true } });
      const seq = ++this.seq;
      const rank = RANK[cls ?? defaultEventClass(event)];
      const line = `{"s":${seq},"k":${rank},"e":${json}}\n`;
      const item: Item = { seq, json, bytes: Buffer.byteLength(line), rank, type: String(event.type) };
      this.items.push(item);
      this.rankCounts[rank]!++;
      this.pendingBytes += item.bytes;
      this.append(line);
      this.enforceBounds();
    } catch (err) {
      // Disk full or read-only: keep the event in memory (it is queued) and say so once per failure.
      this.log.error(
        { err: (err as Error).message, code: 'ERR_EVENT_QUEUE_IO' },
        'event queue: could not write to disk',
      );
    }
    try {
      this.listener?.();
    } catch {
      /* a listener's problem is not the caller's */
    }
  }

  /**
   * Delivers everything queued, in order, `window` publishes in flight; an event is removed only
   * once acknowledged. Resolves when the queue is empty or a publish failed (retry on reconnect).
   * A second call while one runs just asks the running one to go round again.
   */
  async deliver(publish: PublishEvent): Promise<void> {
    if (this.delivering) {
      this.again = true;
      return;
    }
    this.delivering = true;
    try {
      do {
        this.again = false;
        if (!(await this.deliverOnce(publish))) return;
      } while (this.again);
    } finally {
      this.delivering = false;
    }
  }

  /** Closes the file; events stay on disk for the next start. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private async deliverOnce(publish: PublishEvent): Promise<boolean> {
    const window = Math.max(1, this.opts.window ?? 32);
    for (;;) {
      if (this.droppedUnreported > 0) {
        const n = this.droppedUnreported;
        const byType = { ...this.droppedByType };
        const report: SecurityEvent = {
          type: 'events_dropped',
          at: new Date(this.opts.clock.now()).toISOString(),
          serial: this.opts.serial,
          data: { count: n, byType, maxEvents: this.opts.maxEvents, maxBytes: this.opts.maxBytes },
        };
        try {
          await publish(JSON.stringify(report));
        } catch {
          return false;
        }
        this.droppedUnreported -= n;
        for (const [t, k] of Object.entries(byType)) {
          const left = (this.droppedByType[t] ?? 0) - k;
          if (left > 0) this.droppedByType[t] = left;
          else delete this.droppedByType[t];
        }
        this.mark(0);
        continue;
      }
      const batch = this.items.slice(this.head, this.head + window);
      if (batch.length === 0) return true;
      const results = await Promise.allSettled(batch.map((i) => publish(i.json)));
      let through = 0;
      for (let k = 0; k < results.length; k++) {
        if (results[k]!.status !== 'fulfilled') break;
        through = batch[k]!.seq;
      }
      if (through > 0) this.removeThrough(through);
      if (results.some((r) => r.status === 'rejected')) return false;
    }
  }

  private removeThrough(seq: number): void {
    let removed = false;
    while (this.head < this.items.length && this.items[this.head]!.seq <= seq) {
      const it = this.items[this.head]!;
      this.pendingBytes -= it.bytes;
      this.rankCounts[it.rank]!--;
      this.head++;
      removed = true;
    }
    if (!removed) return;
    this.compactArray();
    this.mark(seq);
  }

  private enforceBounds(): void {
    const byteLimit = Math.floor(this.opts.maxBytes * EVENT_SHARE);
    let dropped = 0;
    while (this.size > 0 && (this.size > this.opts.maxEvents || this.pendingBytes > byteLimit)) {
      // The oldest event of the lowest class present: junk goes before anything that matters.
      const rank = this.rankCounts.findIndex((n) => n > 0);
      let k = this.head;
      while (this.items[k]!.rank !== rank) k++;
      const it = this.items[k]!;
      this.pendingBytes -= it.bytes;
      this.rankCounts[rank]!--;
      this.droppedByType[it.type] = (this.droppedByType[it.type] ?? 0) + 1;
      this.droppedByTypeTotal[it.type] = (this.droppedByTypeTotal[it.type] ?? 0) + 1;
      this.droppedUnreported++;
      this.droppedTotal++;
      dropped++;
      if (k === this.head) {
        this.head++;
        this.mark(it.seq);
      } else {
        this.items.splice(k, 1);
        this.mark(it.seq, true);
      }
    }
    if (dropped > 0) {
      this.compactArray();
      // Once per interval, with the count since the last line: a flood must not flood the log.
      this.dropLog.since += dropped;
      const now = this.opts.clock.now();
      if (now - this.dropLog.at >= DROP_LOG_INTERVAL_MS) {
        this.log.warn(
          {
            dropped: this.dropLog.since,
            queued: this.size,
            byType: this.droppedByType,
            code: 'EVENTS_DROPPED',
          },
          'event queue full: lowest-class oldest events dropped',
        );
        this.dropLog = { at: now, since: 0 };
      }
    }
  }

  /** Writes a mark line; rewrites the file when marks and removed events made it too big. */
  private mark(seq: number, one = false): void {
    const line = `{"${one ? 'x' : 'a'}":${seq},"d":${this.droppedUnreported},"t":${JSON.stringify(this.droppedByType)}}\n`;
    this.append(line);
    if (this.fileBytes > this.opts.maxBytes) this.rewrite();
  }

  private compactArray(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  private append(line: string): void {
    if (this.fd === undefined) this.fd = openSync(this.opts.file, 'a', 0o600);
    writeSync(this.fd, line);
    this.fileBytes += Buffer.byteLength(line);
    if (this.fileBytes > this.opts.maxBytes) this.rewrite();
  }

  /** Pending events only, to a temp file, fsync, rename: a crash leaves the old or the new file. */
  private rewrite(): void {
    const tmp = `${this.opts.file}.tmp`;
    const lines: string[] = [];
    for (let k = this.head; k < this.items.length; k++)
      lines.push(`{"s":${this.items[k]!.seq},"k":${this.items[k]!.rank},"e":${this.items[k]!.json}}\n`);
    if (this.droppedUnreported > 0)
      lines.push(`{"a":0,"d":${this.droppedUnreported},"t":${JSON.stringify(this.droppedByType)}}\n`);
    const text = lines.join('');
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (this.fd !== undefined) closeSync(this.fd);
    renameSync(tmp, this.opts.file);
    this.fd = openSync(this.opts.file, 'a', 0o600);
    this.fileBytes = Buffer.byteLength(text);
  }

  private load(): void {
    mkdirSync(dirname(this.opts.file), { recursive: true, mode: 0o700 });
    if (!existsSync(this.opts.file)) return;
    const text = readFileSync(this.opts.file, 'utf8');
    const bySeq: Item[] = [];
    const removed = new Set<number>();
    let acked = 0;
    let corrupt = 0;
    for (const raw of text.split('\n')) {
      if (!raw) continue;
      let rec: { s?: unknown; k?: unknown; e?: unknown; a?: unknown; x?: unknown; d?: unknown; t?: unknown };
      try {
        rec = JSON.parse(raw);
      } catch {
        corrupt++; // a torn last line after a power cut: counted as dropped, reported
        continue;
      }
      if (typeof rec.s === 'number' && rec.e && typeof rec.e === 'object') {
        const e = rec.e as SecurityEvent;
        const json = JSON.stringify(e);
        // Lines written before classes existed carry no k: their type's default class.
        const rank = rec.k === 0 || rec.k === 1 || rec.k === 2 ? rec.k : RANK[defaultEventClass(e)];
        bySeq.push({ seq: rec.s, json, bytes: Buffer.byteLength(raw) + 1, rank, type: String(e.type) });
        this.seq = Math.max(this.seq, rec.s);
      } else if (typeof rec.a === 'number' || typeof rec.x === 'number') {
        if (typeof rec.a === 'number') acked = Math.max(acked, rec.a);
        else removed.add(rec.x as number);
        if (typeof rec.d === 'number') this.droppedUnreported = rec.d;
        if (rec.t && typeof rec.t === 'object') {
          this.droppedByType = {};
          for (const [k, v] of Object.entries(rec.t as Record<string, unknown>))
            if (typeof v === 'number' && v > 0) this.droppedByType[k] = v;
        }
      } else {
        corrupt++;
      }
    }
    this.items = bySeq.filter((i) => i.seq > acked && !removed.has(i.seq));
    this.head = 0;
    for (const i of this.items) this.rankCounts[i.rank]!++;
    this.pendingBytes = this.items.reduce((n, i) => n + i.bytes, 0);
    this.fileBytes = statSync(this.opts.file).size;
    if (corrupt > 0) {
      this.droppedUnreported += corrupt;
      this.droppedTotal += corrupt;
      this.droppedByType.unreadable = (this.droppedByType.unreadable ?? 0) + corrupt;
      this.log.warn({ corrupt, code: 'EVENTS_DROPPED' }, 'event queue: unreadable lines skipped');
    }
    // Start from a clean file: replayed marks are folded in, a torn tail is gone.
    this.rewrite();
    this.enforceBounds();
    if (this.size || this.droppedUnreported)
      this.log.info({ queued: this.size, dropped: this.droppedUnreported }, 'event queue: reloaded');
  }
}
