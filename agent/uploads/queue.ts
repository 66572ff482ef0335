/**
 * The durable, bounded on-device upload queue: the `ArtifactSink` the event side hands each sealed
 * artifact to. From `enqueue` on, the queue owns the sealed file: it deletes it after the artifact
 * was uploaded and its metadata published, or when a bound makes it drop the artifact (counted,
 * reported as an `artifacts_dropped` security event). The index (`events/uploads.json`) is replaced
 * crash-safe on every change, so a restart resumes where it stopped; an artifact whose upload was
 * cut by a crash is uploaded again (same id, same object key: harmless).
 * What to drop and what to send next are decided by ./decide.ts; the transfer itself (URL request,
 * PUT, metadata) is injected, as are the clock, timers, randomness, file-system probes and logger.
 * Must never delete a sealed file it did not take over, drop an artifact silently, or put a URL
 * query in a log line or `lastError` (every error text goes through agent/redact.ts).
 */
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { EventSink } from '../audit/events.ts';
import type { Clock, Random, Timers } from '../clock.ts';
import { LenscapError, isLenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactText } from '../redact.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import type { ArtifactSink, SealedArtifact } from '../events/artifact.ts';
import { DROP_REASONS, type DropReason, type UploadCode } from './codes.ts';
import { nextUpload, planDrops, retryDelay, type QueueBounds, type QueuedView } from './decide.ts';

/** The part of the time seam (agent/clock.ts) the uploader schedules on. */
export type UploadTimers = Pick<Timers, 'setTimeout' | 'clearTimeout'>;

/** What the queue asks of the file system (injected: tests fake a full disk). */
export interface UploadFs {
  /** Free bytes for an unprivileged writer on the filesystem holding `dir`; undefined if unknown. */
  freeBytes(dir: string): number | undefined;
  /** Size of a regular file, undefined when it does not exist. */
  fileSize(path: string): number | undefined;
  /** Removes a file; a missing file is not an error. */
  remove(path: string): void;
}

/** Uploads one artifact and publishes its metadata; throws a LenscapError (UploadCode) on failure. */
export type Transfer = (a: SealedArtifact, signal: AbortSignal) => Promise<void>;

export interface UploadQueueOptions {
  /** paths.uploadIndex */
  file: string;
  /** Where the event side writes sealed files: an artifact whose path is elsewhere is refused. */
  spoolDir: string;
  serial: string;
  bounds: QueueBounds;
  retry: { baseMs: number; capMs: number };
  clock: Clock;
  random: Random;
  timers: UploadTimers;
  logger: Logger;
  events: EventSink;
  fs: UploadFs;
  transfer: Transfer;
  /** Whether uploading can be tried now (the cloud link is up). */
  isOnline(): boolean;
}

export interface UploadStatus {
  queued: number;
  queuedBytes: number;
  clips: number;
  snapshots: number;
  uploaded: number;
  dropped: { total: number; clips: number; snapshots: number; byReason: Record<DropReason, number> };
  lastError?: { code: string; message: string; at: string; id: string };
}

interface Entry extends QueuedView {
  artifact: SealedArtifact;
  attempts: number;
  lastCode?: string;
}

const artifactSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,159}$/, 'url-safe id'),
    eventId: z.string().min(1).max(128),
    kind: z.enum(['snapshot', 'clip']),
    serial: z.string().min(1).max(64),
    startedAt: z.number().int().nonnegative(),
    durationMs: z.number().int().nonnegative(),
    size: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex SHA-256'),
    contentType: z.enum(['image/jpeg', 'video/mp4']),
    sealedTo: z.array(z.string().min(1).max(128)).max(64),
    membershipVersion: z.number().int().nonnegative(),
    path: z.string().min(1).max(4096),
  })
  .strict();

const indexSchema = z.object({
  v: z.literal(1),
  entries: z.array(
    z.object({
      artifact: artifactSchema,
      queuedAt: z.number(),
      attempts: z.number().int().nonnegative(),
      nextAt: z.number(),
      lastCode: z.string().optional(),
    }),
  ),
  uploaded: z.number().int().nonnegative(),
  dropped: z.object({
    clips: z.number().int().nonnegative(),
    snapshots: z.number().int().nonnegative(),
    byReason: z.record(z.string(), z.number().int().nonnegative()),
  }),
  /** Recently uploaded ids: a late duplicate enqueue of one of them is a no-op. */
  recent: z.array(z.string()).max(1000),
});

const RECENT_MAX = 256;
/** Codes that no retry can fix for this artifact: it is dropped (counted) at once. */
const PERMANENT: ReadonlySet<string> = new Set<UploadCode>(['ERR_UPLOAD_FILE_MISMATCH']);
/** Codes that mean "the cloud link is down": no attempt is counted, the queue waits for online. */
const OFFLINE: ReadonlySet<string> = new Set(['ERR_UPLOAD_OFFLINE', 'ERR_CLOUD_OFFLINE']);

function zeroReasons(): Record<DropReason, number> {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
}

export class UploadQueue implements ArtifactSink {
  private readonly entries = new Map<string, Entry>();
  private readonly recent: string[] = [];
  private uploaded = 0;
  private readonly dropped = { clips: 0, snapshots: 0, byReason: zeroReasons() };
  private lastError: UploadStatus['lastError'];
  private busy: string | undefined;
  private running = false;
  private timer: unknown;
  private closed = false;
  private abort = new AbortController();
  private current: Promise<void> | undefined;
  private dirty = false;
  private readonly log: Logger;
  private readonly spoolDir: string;
  private readonly listeners = new Set<(ev: { type: 'uploaded' | 'dropped'; id: string }) => void>();

  private constructor(private readonly o: UploadQueueOptions) {
    this.log = o.logger.child({ component: 'uploads' });
    this.spoolDir = resolve(o.spoolDir);
  }

  /** Loads the index (a missing or unreadable one starts empty, logged) and applies the bounds. */
  static open(o: UploadQueueOptions): UploadQueue {
    const q = new UploadQueue(o);
    mkdirSync(dirname(o.file), { recursive: true, mode: 0o700 });
    q.load();
    q.enforceBounds();
    q.persist();
    return q;
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.o.file, 'utf8');
    } catch {
      return;
    }
    let parsed: z.infer<typeof indexSchema>;
    try {
      parsed = indexSchema.parse(JSON.parse(text));
    } catch (err) {
      this.log.error(
        { code: 'ERR_UPLOAD_INDEX_IO', err: (err as Error).message.slice(0, 200) },
        'upload queue: index unreadable, starting empty (sealed files it named stay in the spool)',
      );
      return;
    }
    this.uploaded = parsed.uploaded;
    this.dropped.clips = parsed.dropped.clips;
    this.dropped.snapshots = parsed.dropped.snapshots;
    for (const r of DROP_REASONS) this.dropped.byReason[r] = parsed.dropped.byReason[r] ?? 0;
    this.recent.push(...parsed.recent.slice(-RECENT_MAX));
    const missing: Entry[] = [];
    for (const e of parsed.entries) {
      const entry: Entry = {
        id: e.artifact.id,
        kind: e.artifact.kind,
        size: e.artifact.size,
        startedAt: e.artifact.startedAt,
        queuedAt: e.queuedAt,
        // A restart retries at once: the reason for the wait (a dead link, a full store) may be gone.
        nextAt: 0,
        attempts: e.attempts,
        artifact: e.artifact,
        ...(e.lastCode ? { lastCode: e.lastCode } : {}),
      };
      this.entries.set(entry.id, entry);
      if (this.o.fs.fileSize(e.artifact.path) !== e.artifact.size) missing.push(entry);
    }
    if (missing.length) this.drop(missing.map((e) => ({ id: e.id, reason: 'file_mismatch' as const })));
    this.log.info({ queued: this.entries.size }, 'upload queue: loaded');
  }

  private persist(): void {
    const body = {
      v: 1,
      entries: [...this.entries.values()].map((e) => ({
        artifact: e.artifact,
        queuedAt: e.queuedAt,
        attempts: e.attempts,
        nextAt: e.nextAt,
        ...(e.lastCode ? { lastCode: e.lastCode } : {}),
      })),
      uploaded: this.uploaded,
      dropped: this.dropped,
      recent: this.recent,
    };
    try {
      writeFileAtomic(this.o.file, JSON.stringify(body));
      this.dirty = false;
    } catch (err) {
      // Kept in memory and written with the next change: a full disk frees up as clips are dropped.
      this.dirty = true;
      this.log.error(
        { code: 'ERR_UPLOAD_INDEX_IO', err: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
        'upload queue: index not written (kept in memory, retried with the next change)',
      );
    }
  }

  /** Takes over a sealed artifact: validated, queued durably, bounds applied, upload kicked. */
  async enqueue(a: SealedArtifact): Promise<void> {
    if (this.closed) throw new LenscapError('ERR_UPLOAD_OFFLINE', 'the upload queue is closed');
    const r = artifactSchema.safeParse(a);
    if (!r.success) {
      const first = r.error.issues[0];
      throw new LenscapError(
        'ERR_UPLOAD_ARTIFACT_INVALID',
        `artifact refused: ${first ? `${first.path.join('.') || '(record)'}: ${first.message}` : 'invalid'}`.slice(
          0,
          200,
        ),
      );
    }
    const art = r.data as SealedArtifact;
    if (art.serial !== this.o.serial)
      throw new LenscapError(
        'ERR_UPLOAD_ARTIFACT_INVALID',
        `artifact of another serial (${art.serial.slice(0, 64)})`,
      );
    if (!isAbsolute(art.path) || dirname(resolve(art.path)) !== this.spoolDir)
      throw new LenscapError(
        'ERR_UPLOAD_ARTIFACT_INVALID',
        'artifact path is not a file of the spool directory',
      );
    if (this.entries.has(art.id) || this.recent.includes(art.id)) {
      // Idempotent: the same artifact handed over twice is queued (or was uploaded) once.
      this.log.info({ id: art.id }, 'upload queue: artifact already queued or uploaded, not queued again');
      if (this.recent.includes(art.id) && !this.entries.has(art.id)) this.o.fs.remove(art.path);
      return;
    }
    const onDisk = this.o.fs.fileSize(art.path);
    if (onDisk !== art.size)
      throw new LenscapError(
        'ERR_UPLOAD_FILE_MISMATCH',
        onDisk === undefined
          ? 'the sealed file does not exist'
          : `the sealed file has ${onDisk} bytes, the record says ${art.size}`,
      );
    const now = this.o.clock.now();
    this.entries.set(art.id, {
      id: art.id,
      kind: art.kind,
      size: art.size,
      startedAt: art.startedAt,
      queuedAt: now,
      nextAt: 0,
      attempts: 0,
      artifact: art,
    });
    this.enforceBounds();
    this.persist();
    this.log.info({ id: art.id, kind: art.kind, size: art.size }, 'upload queue: artifact queued');
    this.kick();
  }

  /** The cloud link came (back) up: resume after a jittered pause, so a fleet does not upload at once. */
  online(): void {
    if (this.closed) return;
    this.schedule(retryDelay(1, this.o.retry, this.o.random));
  }

  /** Runs the uploader now if it is not running (tests, a fresh artifact). */
  kick(): void {
    if (this.closed || this.running) return;
    this.clearTimer();
    queueMicrotask(() => void this.run());
  }

  on(listener: (ev: { type: 'uploaded' | 'dropped'; id: string }) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): UploadStatus {
    let bytes = 0;
    let clips = 0;
    for (const e of this.entries.values()) {
      bytes += e.size;
      if (e.kind === 'clip') clips++;
    }
    return {
      queued: this.entries.size,
      queuedBytes: bytes,
      clips,
      snapshots: this.entries.size - clips,
      uploaded: this.uploaded,
      dropped: {
        total: this.dropped.clips + this.dropped.snapshots,
        clips: this.dropped.clips,
        snapshots: this.dropped.snapshots,
        byReason: { ...this.dropped.byReason },
      },
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
    };
  }

  /** Ids waiting, in queue order (tests, status). */
  ids(): string[] {
    return [...this.entries.keys()];
  }

  /** Stops the uploader: an upload in flight is aborted (it is redone after the next start). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.abort.abort();
    await this.current?.catch(() => undefined);
    if (this.dirty) this.persist();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.o.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    this.clearTimer();
    this.timer = this.o.timers.setTimeout(
      () => {
        this.timer = undefined;
        void this.run();
      },
      Math.max(0, ms),
    );
  }

  private async run(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    try {
      while (!this.closed) {
        if (!this.o.isOnline()) return; // online() resumes
        const step = nextUpload([...this.entries.values()], this.o.clock.now());
        if (step.kind === 'idle') return;
        if (step.kind === 'wait') return this.schedule(step.ms);
        const entry = this.entries.get(step.id)!;
        this.busy = entry.id;
        this.current = this.o.transfer(entry.artifact, this.abort.signal);
        try {
          await this.current;
          this.succeeded(entry);
        } catch (err) {
          if (this.closed) return;
          if (!this.failed(entry, err)) return;
        } finally {
          this.busy = undefined;
          this.current = undefined;
        }
        this.enforceBounds();
        this.persist();
      }
    } finally {
      this.running = false;
    }
  }

  private succeeded(e: Entry): void {
    this.entries.delete(e.id);
    this.uploaded++;
    this.recent.push(e.id);
    if (this.recent.length > RECENT_MAX) this.recent.splice(0, this.recent.length - RECENT_MAX);
    // The index first: a crash between the two leaves a stray file, never a queued entry without one.
    this.persist();
    this.o.fs.remove(e.artifact.path);
    this.log.info({ id: e.id, kind: e.kind, attempts: e.attempts + 1 }, 'upload queue: artifact uploaded');
    for (const l of this.listeners) l({ type: 'uploaded', id: e.id });
  }

  /** Returns false when the loop should stop (offline). */
  private failed(e: Entry, err: unknown): boolean {
    const code = isLenscapError(err) ? err.code : 'ERR_UPLOAD_NETWORK';
    const message = redactText(
      isLenscapError(err) ? err.message : ((err as Error)?.message ?? String(err)),
    ).slice(0, 300);
    this.lastError = { code, message, at: new Date(this.o.clock.now()).toISOString(), id: e.id };
    if (PERMANENT.has(code)) {
      this.log.error({ id: e.id, code, err: message }, 'upload queue: artifact cannot be uploaded; dropped');
      this.drop([{ id: e.id, reason: 'file_mismatch' }]);
      return true;
    }
    if (OFFLINE.has(code) && !this.o.isOnline()) {
      this.log.info({ id: e.id, code }, 'upload queue: offline, waiting for the link');
      return false;
    }
    e.attempts++;
    e.lastCode = code;
    const delay = retryDelay(e.attempts, this.o.retry, this.o.random);
    e.nextAt = this.o.clock.now() + delay;
    this.log.warn(
      { id: e.id, code, err: message, attempts: e.attempts, retryInMs: delay },
      'upload queue: upload failed, will retry',
    );
    return true;
  }

  private enforceBounds(): void {
    const drops = planDrops(
      [...this.entries.values()],
      this.o.bounds,
      this.o.fs.freeBytes(this.spoolDir),
      this.busy,
    );
    if (drops.length) this.drop(drops);
  }

  private drop(drops: Array<{ id: string; reason: DropReason }>): void {
    const byReason = new Map<
      DropReason,
      { clips: number; snapshots: number; bytes: number; ids: string[] }
    >();
    for (const d of drops) {
      const e = this.entries.get(d.id);
      if (!e) continue;
      this.entries.delete(d.id);
      this.o.fs.remove(e.artifact.path);
      if (e.kind === 'clip') this.dropped.clips++;
      else this.dropped.snapshots++;
      this.dropped.byReason[d.reason]++;
      let agg = byReason.get(d.reason);
      if (!agg) byReason.set(d.reason, (agg = { clips: 0, snapshots: 0, bytes: 0, ids: [] }));
      if (e.kind === 'clip') agg.clips++;
      else agg.snapshots++;
      agg.bytes += e.size;
      if (agg.ids.length < 10) agg.ids.push(e.id);
      for (const l of this.listeners) l({ type: 'dropped', id: e.id });
    }
    const at = new Date(this.o.clock.now()).toISOString();
    for (const [reason, agg] of byReason) {
      this.log.warn(
        { code: 'ARTIFACTS_DROPPED', reason, clips: agg.clips, snapshots: agg.snapshots, bytes: agg.bytes },
        'upload queue: artifacts dropped to stay within bounds',
      );
      this.o.events.emit({
        type: 'artifacts_dropped',
        at,
        serial: this.o.serial,
        reason,
        source: 'uploads',
        data: {
          clips: agg.clips,
          snapshots: agg.snapshots,
          bytes: agg.bytes,
          ids: agg.ids,
          droppedTotal: this.dropped.clips + this.dropped.snapshots,
        },
      });
    }
  }
}
