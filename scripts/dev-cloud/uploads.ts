/**
 * The dev cloud's half of event uploads: answers each camera's `req/upload.url` with a presigned PUT
 * URL for `<serial>/<artifactId>.sealed` (signed by @aws-sdk/s3-request-presigner against the dev
 * object store; content length, checksum and a short expiry bound), refusing an artifact id that
 * does not belong to the asking serial; keeps the `motion` metadata cameras publish after an upload.
 * `fault` lets tests and the incident replay make the cloud misbehave on purpose (http URL, foreign
 * host, expired signature, garbage, silence).
 * Must never sign a URL for an artifact of another serial, and never log a URL's query.
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import { silentLogger, type Logger } from '../../agent/log.ts';
import type { CloudClient } from './cloud-client.ts';
import type { ObjectStore } from './object-store.ts';

export type UploadFault = 'none' | 'http' | 'foreign_host' | 'expired' | 'garbage' | 'refuse' | 'silent';

/** What a camera asks on `req/upload.url`. */
const requestSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/),
    artifactId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,159}$/),
    kind: z.enum(['snapshot', 'clip']),
    size: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    contentType: z.enum(['image/jpeg', 'video/mp4']),
  })
  .strict();

const motionSchema = z
  .object({
    v: z.literal(1),
    id: z.string(),
    eventId: z.string(),
    kind: z.enum(['snapshot', 'clip']),
    serial: z.string(),
    startedAt: z.number(),
    durationMs: z.number(),
    size: z.number(),
    sha256: z.string(),
    contentType: z.string(),
    sealedTo: z.array(z.string()),
    membershipVersion: z.number(),
    key: z.string(),
    uploadedAt: z.number(),
  })
  .passthrough();

export type MotionRecord = z.infer<typeof motionSchema> & { receivedAt: string };

export interface DevUploadsOptions {
  cloud: CloudClient;
  store: ObjectStore;
  /** Expiry of each URL (short: it is a bearer credential for one object). */
  expiresInSeconds?: number;
  /** Largest artifact the cloud signs for. */
  maxBytes?: number;
  logger?: Logger;
}

export interface DevUploads extends EventEmitter {
  /** Metadata received, newest last, deduplicated by artifact id. */
  motion(serial?: string): MotionRecord[];
  /** The stored sealed bytes of an artifact (by its metadata's key). */
  fetch(key: string): Promise<Buffer | undefined>;
  /** Make the URL answers misbehave (tests, the incident replay). */
  setFault(fault: UploadFault): void;
  counters(): { requests: number; signed: number; refused: number; motion: number };
  close(): void;
}

/** The artifact id belongs to `serial`: the camera names them `<serial>-<eventId>-<kind>`. */
export function artifactBelongsTo(serial: string, artifactId: string): boolean {
  return artifactId.startsWith(`${serial}-`) && artifactId.length > serial.length + 1;
}

export function startDevUploads(opts: DevUploadsOptions): DevUploads {
  const log = (opts.logger ?? silentLogger()).child({ component: 'uploads' });
  const expires = opts.expiresInSeconds ?? 120;
  const maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
  const emitter = new EventEmitter();
  const records = new Map<string, MotionRecord>();
  const counts = { requests: 0, signed: 0, refused: 0, motion: 0 };
  let fault: UploadFault = 'none';

  const answer = (serial: string, payload: Record<string, unknown>) =>
    opts.cloud.command(serial, 'upload.url', payload, 10_000).catch((err: Error) => {
      log.warn({ serial, err: err.message }, 'upload.url answer not acknowledged');
    });

  const onRequest = async (m: { serial: string; op: string; body: unknown }) => {
    if (m.op !== 'upload.url') return;
    counts.requests++;
    const r = requestSchema.safeParse(m.body);
    if (!r.success) {
      counts.refused++;
      const id = (m.body as { id?: unknown }).id;
      const artifactId = (m.body as { artifactId?: unknown }).artifactId;
      if (typeof id === 'string' && typeof artifactId === 'string')
        void answer(m.serial, {
          requestId: id,
          artifactId,
          error: { code: 'bad_request', message: 'the request did not validate' },
        });
      return;
    }
    const q = r.data;
    const refuse = (code: string, message: string) => {
      counts.refused++;
      log.warn({ serial: m.serial, artifactId: q.artifactId, code }, 'upload URL refused');
      return answer(m.serial, { requestId: q.id, artifactId: q.artifactId, error: { code, message } });
    };
    if (!artifactBelongsTo(m.serial, q.artifactId))
      return refuse('wrong_serial', 'the artifact id does not belong to this camera');
    if (q.size > maxBytes) return refuse('too_large', `larger than ${maxBytes} bytes`);
    if (fault === 'silent') return;
    if (fault === 'refuse') return refuse('unavailable', 'the object store is unavailable');
    if (fault === 'garbage')
      return answer(m.serial, { requestId: q.id, artifactId: q.artifactId, url: 42, key: ['x'] });
    const key = `${m.serial}/${q.artifactId}.sealed`;
    let url = await opts.store.presignPut(key, {
      size: q.size,
      sha256: q.sha256,
      expiresInSeconds: expires,
      ...(fault === 'expired' ? { signingDate: new Date(Date.now() - (expires + 60) * 1000) } : {}),
    });
    if (fault === 'http') url = url.replace(/^https:/, 'http:');
    if (fault === 'foreign_host')
      url = url.replace(opts.store.host, `evil.example:${opts.store.host.split(':')[1]}`);
    counts.signed++;
    // The expiry the cloud states is the truth but for the `expired` fault, where the store must say it.
    await answer(m.serial, {
      requestId: q.id,
      artifactId: q.artifactId,
      url,
      key,
      expiresAt: Date.now() + expires * 1000,
    });
  };

  const onMotion = (m: { serial: string; body: unknown }) => {
    const r = motionSchema.safeParse(m.body);
    // The topic, not the payload, says which camera spoke; its artifacts live under its own prefix.
    if (!r.success || r.data.serial !== m.serial || !r.data.key.startsWith(`${m.serial}/`)) {
      log.warn({ serial: m.serial }, 'motion metadata refused');
      return;
    }
    counts.motion++;
    const rec = { ...r.data, receivedAt: new Date().toISOString() };
    records.delete(rec.id);
    records.set(rec.id, rec);
    while (records.size > 5000) records.delete(records.keys().next().value as string);
    emitter.emit('motion', rec);
  };

  const reqListener = (m: { serial: string; op: string; body: unknown }) =>
    void onRequest(m).catch((err: Error) => log.warn({ err: err.message }, 'upload request failed'));
  opts.cloud.on('request', reqListener);
  opts.cloud.on('motion', onMotion);

  return Object.assign(emitter, {
    motion: (serial?: string) => [...records.values()].filter((r) => !serial || r.serial === serial),
    fetch: (key: string) => opts.store.get(key),
    setFault: (f: UploadFault) => void (fault = f),
    counters: () => ({ ...counts }),
    close() {
      opts.cloud.off('request', reqListener);
      opts.cloud.off('motion', onMotion);
    },
  }) as DevUploads;
}
