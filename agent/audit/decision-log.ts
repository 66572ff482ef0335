/**
 * The device's own record of every grant decision: append-only JSON lines in the state dir,
 * rotated by size (one previous generation kept), surviving reboots. An accept is fsync'd before
 * the caller may start a stream, so a session never exists without its audit line — and that
 * line doubles as the replay record (see agent/grants/replay-cache.ts): one fsync per accept.
 * Must never write a whole token, and never let an audit failure turn into an accept.
 */
import { redactValue } from '../redact.ts';
import {
  closeSync,
  constants,
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

export class DecisionLog {
  private fd: number | undefined;
  private size = 0;

  /**
   * `beforeRotate` runs before the current file becomes `.1` (and the old `.1` is dropped); the
   * replay cache snapshots its live ids there. If it throws, nothing rotates and append throws.
   */
  constructor(
    private readonly file: string,
    private readonly maxBytes = 1024 * 1024,
    private readonly beforeRotate?: () => void,
  ) {}

  /** Appends a line; `durable` fsyncs before returning (accepts). Throws on I/O failure. */
  append(line: DecisionLine, durable: boolean): void {
    const buf = Buffer.from(JSON.stringify(redactValue(line)) + '\n');
    if (this.fd === undefined) this.open();
    if (this.size + buf.length > this.maxBytes && this.size > 0) this.rotate();
    writeSync(this.fd!, buf);
    this.size += buf.length;
    if (durable) fsyncSync(this.fd!);
  }

  close(): void {
    if (this.fd !== undefined) {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = undefined;
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
