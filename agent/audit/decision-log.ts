/**
 * The device's own record of every grant decision: append-only JSON lines in the state dir,
 * rotated by size (one previous generation kept), surviving reboots. An accept is durable
 * (fdatasync'd) before the caller may start a stream, so a session never exists without its audit
 * line — and that line doubles as the replay record (see agent/grants/replay-cache.ts).
 * Group commit: `appendDurable` writes the line at once and resolves only after an fdatasync that
 * was issued after that write completed. The flush is deferred to the end of the event-loop turn
 * (setImmediate), so every accept decided in that turn shares it, and accepts that arrive while a
 * flush is in flight share the next one. Where a flush runs is decided per flush (`flushPlace`):
 * a lone accept on a fast disk flushes on the loop — the floor itself, one syscall and no thread
 * hand-off (a thread-pool round trip cost ~0.5 ms per join here); accepts that follow the last
 * flush within LOOP_FLUSH_IDLE_MS (a burst of viewers) flush on libuv's pool, so the next ones are
 * verified while the disk works instead of queueing behind a blocked loop (8 joins at once were
 * 20–35 % slower with every flush on the loop); and once a flush took longer than the loop budget
 * (an SD card, a busy disk) the following ones run on the pool too, so the media of viewers
 * already watching never waits for a slow disk more than once in a row.
 * Must never write a whole token, never resolve an accept before its line is durable, and never
 * let an audit failure turn into an accept.
 */
import { redactValue } from '../redact.ts';
import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { LenscapError } from '../errors.ts';

export interface DecisionLine {
  at: string;
  decision: 'accept' | 'refuse';
  reason?: string;
  jti?: string;
  sub?: string;
  /** The audience the grant claimed (for refusals, as read from the unverified token). */
  aud?: string;
  source: string;
  purpose: string;
  exp?: number;
  /** Token fingerprint (length + first 8 chars), to correlate with the cloud without the token. */
  token?: string;
  /** A summary line: this many further refusals of this reason and source were counted, not written, since `since`. */
  suppressed?: number;
  since?: string;
}

/** Written after a torn last line (power cut mid-write), so readers know that line never completed. */
export const TORN_TAIL_MARKER = '{"decision":"repair","note":"the line above was cut mid-write"}';

/** The flush the log issues, in its two places; tests pass their own to watch what is durable when. */
export interface DecisionLogIo {
  /** fs.fdatasync's contract: data and the metadata needed to read it back (the size) are on disk. */
  fdatasync(fd: number, done: (err: Error | null) => void): void;
  /** The same flush on the calling thread (the event loop); throws on failure. */
  fdatasyncSync(fd: number): void;
  /** Monotonic milliseconds: times each flush to choose where the next one runs. */
  now(): number;
  /** Runs `fn` at the end of this event-loop turn (setImmediate): the group commit's window. */
  defer(fn: () => void): void;
}

export const nodeDecisionLogIo: DecisionLogIo = {
  fdatasync,
  fdatasyncSync,
  now: () => performance.now(),
  defer: (fn) => void setImmediate(fn),
};

/** How long a flush may hold the event loop (ms) before the following ones move to libuv's pool. */
export const LOOP_FLUSH_BUDGET_MS = 5;
/** A flush that starts less than this (ms) after the last one ended belongs to a burst: the pool. */
export const LOOP_FLUSH_IDLE_MS = 10;

/** The last completed flush: how long it took and when it ended (the log's monotonic ms). */
export interface LastFlush {
  tookMs: number;
  endedAt: number;
}

/**
 * Where the next flush runs: on the loop when the log was idle (no flush ended within `idleMs` of
 * `now`) and the last flush stayed within `budgetMs`; on libuv's pool otherwise. A budget of 0 or
 * less keeps every flush on the pool.
 */
export function flushPlace(
  last: LastFlush | undefined,
  now: number,
  budgetMs: number,
  idleMs = LOOP_FLUSH_IDLE_MS,
): 'loop' | 'pool' {
  if (budgetMs <= 0) return 'pool';
  if (last === undefined) return 'loop';
  return last.tookMs <= budgetMs && now - last.endedAt >= idleMs ? 'loop' : 'pool';
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class DecisionLog {
  private fd: number | undefined;
  private size = 0;
  /** Lines written and not yet covered by an issued flush. */
  private pending: Waiter[] = [];
  /** The flush in flight (issued after every line it covers was written), if any. */
  private inFlight: Waiter[] | undefined;
  /** Bumped when the fd is closed (rotation, close): a flush of an old fd settles nothing. */
  private generation = 0;
  /** A deferred flush is due at the end of this turn. */
  private scheduled = false;
  /** The last completed flush: where the next one runs (`flushPlace`). */
  private lastFlush: LastFlush | undefined;

  /**
   * `beforeRotate` runs before the current file becomes `.1` (and the old `.1` is dropped); the
   * replay cache snapshots its live ids there. If it throws, nothing rotates and append throws.
   */
  constructor(
    private readonly file: string,
    private readonly maxBytes = 1024 * 1024,
    private readonly beforeRotate?: () => void,
    private readonly io: DecisionLogIo = nodeDecisionLogIo,
    /** See LOOP_FLUSH_BUDGET_MS; 0 keeps every flush on libuv's pool. */
    private readonly loopBudgetMs = LOOP_FLUSH_BUDGET_MS,
  ) {}

  /** Appends a line without waiting for the disk (refusals, summaries). Throws on I/O failure. */
  append(line: DecisionLine): void {
    const buf = Buffer.from(JSON.stringify(redactValue(line)) + '\n');
    if (this.fd === undefined) this.open();
    if (this.size + buf.length > this.maxBytes && this.size > 0) this.rotate();
    writeSync(this.fd!, buf);
    this.size += buf.length;
  }

  /**
   * Appends a line and resolves once it is durable (accepts); rejects on any I/O failure, and then
   * the caller must refuse. The write itself is synchronous, so lines keep the order of the calls;
   * the flush waits for the end of the turn, so the accepts of one turn share it.
   */
  appendDurable(line: DecisionLine): Promise<void> {
    this.append(line);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      if (this.inFlight || this.scheduled) return;
      this.scheduled = true;
      this.io.defer(() => {
        this.scheduled = false;
        if (!this.inFlight) this.flush();
      });
    });
  }

  /** Issues one fdatasync for every line written so far; lines written meanwhile wait for the next. */
  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    if (this.fd === undefined) {
      // close() already synced and settled everything it saw; a line cannot be pending without an fd.
      for (const w of batch) w.reject(new Error('decision log closed before the flush'));
      return;
    }
    const t0 = this.io.now();
    if (flushPlace(this.lastFlush, t0, this.loopBudgetMs) === 'loop') {
      let failed: Error | undefined;
      try {
        this.io.fdatasyncSync(this.fd);
      } catch (err) {
        failed = err as Error;
      }
      const endedAt = this.io.now();
      this.lastFlush = { tookMs: endedAt - t0, endedAt };
      for (const w of batch)
        if (failed) w.reject(failed);
        else w.resolve();
      return;
    }
    this.inFlight = batch;
    const gen = this.generation;
    this.io.fdatasync(this.fd, (err) => {
      // Rotated or closed meanwhile: close() fsync'd this fd synchronously and settled this batch.
      if (gen !== this.generation || this.inFlight !== batch) return;
      this.inFlight = undefined;
      const endedAt = this.io.now();
      this.lastFlush = { tookMs: endedAt - t0, endedAt };
      for (const w of batch)
        if (err) w.reject(err);
        else w.resolve();
      if (this.pending.length) this.flush();
    });
  }

  close(): void {
    if (this.fd !== undefined) {
      const waiting = [...(this.inFlight ?? []), ...this.pending];
      this.inFlight = undefined;
      this.pending = [];
      this.generation++;
      let failed: Error | undefined;
      try {
        fsyncSync(this.fd);
      } catch (err) {
        failed = err as Error;
      }
      closeSync(this.fd);
      this.fd = undefined;
      // Every line written to this fd is durable now (or the sync failed and none may count as such).
      for (const w of waiting)
        if (failed) w.reject(failed);
        else w.resolve();
      if (failed) throw failed;
    }
  }

  private open(): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    // 'a+' plus O_NOFOLLOW: a symlink planted at the log's path (to another file, to /dev/null)
    // would redirect or swallow the decisions — and the accept lines are the replay records.
    let fd: number;
    try {
      fd = openSync(
        this.file,
        constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
        0o600,
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP')
        throw new LenscapError(
          'ERR_AUDIT_LOG_UNSAFE',
          `audit log ${this.file} is a symlink; refusing to write through it`,
        );
      throw err;
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      throw new LenscapError('ERR_AUDIT_LOG_UNSAFE', `audit log ${this.file} is not a regular file`);
    }
    let size = st.size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        const repair = Buffer.from(`\n${TORN_TAIL_MARKER}\n`);
        writeSync(fd, repair);
        fsyncSync(fd);
        size += repair.length;
      }
    }
    this.fd = fd;
    this.size = size;
  }

  private rotate(): void {
    this.beforeRotate?.();
    this.close();
    renameSync(this.file, `${this.file}.1`);
    this.open();
  }
}
