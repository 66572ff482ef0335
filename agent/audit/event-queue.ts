/**
 * The on-disk queue of security events awaiting delivery to the cloud (`events`, QoS 1). An
 * append-only JSONL log: event lines `{"s":seq,"e":{...}}` and mark lines `{"a":seq,"d":n}` (removed
 * through seq; n events dropped and not yet reported). Bounded by count and bytes: the oldest events
 * go first and the drop count is itself reported as an `events_dropped` event ahead of the rest.
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
import type { EventSink, SecurityEvent } from './events.ts';

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
}

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

  /** Called after each emit (the link uses it to start a delivery when online). */
  onEnqueued(listener: (() => void) | undefined): void {
    this.listener = listener;
  }

  emit(raw: SecurityEvent): void {
    try {
      // One redaction for everything that leaves the camera as an event (agent/redact.ts).
      const event = redactValue(raw);
      let json = JSON.stringify(event);
      if (Buffer.byteLength(json) > MAX_EVENT_BYTES)
        json = JSON.stringify({ ...event, data: { truncated: true } });
      const seq = ++this.seq;
      const line = `{"s":${seq},"e":${json}}\n`;
      const item: Item = { seq, json, bytes: Buffer.byteLength(line) };
      this.items.push(item);
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
        const report: SecurityEvent = {
          type: 'events_dropped',
          at: new Date(this.opts.clock.now()).toISOString(),
          serial: this.opts.serial,
          data: { count: n, maxEvents: this.opts.maxEvents, maxBytes: this.opts.maxBytes },
        };
        try {
          await publish(JSON.stringify(report));
        } catch {
          return false;
        }
        this.droppedUnreported -= n;
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
      this.pendingBytes -= this.items[this.head]!.bytes;
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
    let through = 0;
    while (this.size > 0 && (this.size > this.opts.maxEvents || this.pendingBytes > byteLimit)) {
      const it = this.items[this.head++]!;
      this.pendingBytes -= it.bytes;
      through = it.seq;
      dropped++;
    }
    if (dropped > 0) {
      this.droppedUnreported += dropped;
      this.droppedTotal += dropped;
      this.compactArray();
      this.log.warn(
        { dropped, queued: this.size, code: 'EVENTS_DROPPED' },
        'event queue full: oldest events dropped',
      );
      this.mark(through);
    }
  }

  /** Writes a mark line; rewrites the file when marks and removed events made it too big. */
  private mark(through: number): void {
    const line = `{"a":${through},"d":${this.droppedUnreported}}\n`;
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
      lines.push(`{"s":${this.items[k]!.seq},"e":${this.items[k]!.json}}\n`);
    if (this.droppedUnreported > 0) lines.push(`{"a":0,"d":${this.droppedUnreported}}\n`);
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
    let first = 0;
    let corrupt = 0;
    for (const raw of text.split('\n')) {
      if (!raw) continue;
      let rec: { s?: unknown; e?: unknown; a?: unknown; d?: unknown };
      try {
        rec = JSON.parse(raw);
      } catch {
        corrupt++; // a torn last line after a power cut: counted as dropped, reported
        continue;
      }
      if (typeof rec.s === 'number' && rec.e && typeof rec.e === 'object') {
        const json = JSON.stringify(rec.e);
        bySeq.push({ seq: rec.s, json, bytes: Buffer.byteLength(raw) + 1 });
        this.seq = Math.max(this.seq, rec.s);
      } else if (typeof rec.a === 'number') {
        const a = rec.a;
        while (first < bySeq.length && bySeq[first]!.seq <= a) first++;
        if (typeof rec.d === 'number') this.droppedUnreported = rec.d;
      } else {
        corrupt++;
      }
    }
    this.items = bySeq.slice(first);
    this.head = 0;
    this.pendingBytes = this.items.reduce((n, i) => n + i.bytes, 0);
    this.fileBytes = statSync(this.opts.file).size;
    if (corrupt > 0) {
      this.droppedUnreported += corrupt;
      this.droppedTotal += corrupt;
      this.log.warn({ corrupt, code: 'EVENTS_DROPPED' }, 'event queue: unreadable lines skipped');
    }
    // Start from a clean file: replayed marks are folded in, a torn tail is gone.
    this.rewrite();
    this.enforceBounds();
    if (this.size || this.droppedUnreported)
      this.log.info({ queued: this.size, dropped: this.droppedUnreported }, 'event queue: reloaded');
  }
}
