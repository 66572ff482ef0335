/**
 * The dev cloud's object store: s3rver (an S3-compatible server in Node) over HTTPS on loopback with
 * a dev-CA server certificate, plus what s3rver leaves out: it does not check SigV4 signatures, so a
 * middleware in front of it verifies every presigned PUT (signature over method, path, query and the
 * signed headers — content-length and x-amz-checksum-sha256 — and the expiry) and, after s3rver
 * stored the body, that the bytes hash to the signed checksum (else the object is deleted: BadDigest).
 * Presigned URLs come from `@aws-sdk/s3-request-presigner`, exactly as a real cloud would sign them
 * for S3, MinIO or Ceph RGW. Must never listen beyond loopback, never accept an unsigned or
 * mis-signed PUT, and never log a URL's query.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { silentLogger, type Logger } from '../../agent/log.ts';

const require = createRequire(import.meta.url);

/** s3rver's fixed dev account (it ships only this one). Not a secret: loopback dev store. */
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';
const REGION = 'us-east-1';
export const EVENTS_BUCKET = 'lenscap-events';

interface KoaCtx {
  method: string;
  url: string;
  path: string;
  querystring: string;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
  set(name: string, value: string): void;
}
type Middleware = (ctx: KoaCtx, next: () => Promise<void>) => Promise<void>;
interface S3rverApp {
  middleware: Middleware[];
  store: {
    getResourcePath(bucket: string, key: string, resource: string): string;
    deleteObject(b: string, k: string): Promise<void>;
  };
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}

export interface ObjectStoreOptions {
  dir: string;
  tls: { key: string; cert: string };
  /** CA of tls.cert: what a camera's uploads.ca names, and what the dev cloud's own reads trust. */
  caPem: string;
  port?: number;
  logger?: Logger;
}

export interface PresignOptions {
  size: number;
  /** Hex SHA-256 of the bytes to be PUT. */
  sha256: string;
  expiresInSeconds: number;
  /** Sign as of this time (tests: an already expired URL). Default now. */
  signingDate?: Date;
}

export interface ObjectStore {
  /** https://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port>: a camera's uploads.host */
  host: string;
  bucket: string;
  caPem: string;
  presignPut(key: string, o: PresignOptions): Promise<string>;
  /** The stored bytes of `key`, or undefined (read with a presigned GET, like any store client). */
  get(key: string): Promise<Buffer | undefined>;
  counters(): { accepted: number; refused: number; badDigest: number };
  close(): Promise<void>;
}

const enc = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/**
 * SigV4 check of a presigned request (query authentication, UNSIGNED-PAYLOAD). Returns undefined when
 * it holds, else S3's error code and message.
 */
export function verifyPresigned(
  req: {
    method: string;
    path: string;
    rawQuery: string;
    headers: Record<string, string | string[] | undefined>;
  },
  secret: string,
  now: number,
): { code: string; message: string } | undefined {
  const pairs = req.rawQuery
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const i = p.indexOf('=');
      const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, '%20'));
      return i < 0 ? [dec(p), ''] : [dec(p.slice(0, i)), dec(p.slice(i + 1))];
    }) as Array<[string, string]>;
  const q = new Map(pairs);
  const need = [
    'X-Amz-Algorithm',
    'X-Amz-Credential',
    'X-Amz-Date',
    'X-Amz-Expires',
    'X-Amz-SignedHeaders',
    'X-Amz-Signature',
  ];
  if (need.some((k) => !q.has(k)) || q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256')
    return { code: 'AccessDenied', message: 'presigned query authentication (SigV4) required' };
  const amzDate = q.get('X-Amz-Date')!;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  const expires = Number(q.get('X-Amz-Expires'));
  if (!m || !Number.isInteger(expires) || expires < 1 || expires > 604800)
    return { code: 'AuthorizationQueryParametersError', message: 'bad X-Amz-Date or X-Amz-Expires' };
  const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (now > signedAt + expires * 1000) return { code: 'AccessDenied', message: 'Request has expired' };
  if (signedAt > now + 15 * 60_000) return { code: 'AccessDenied', message: 'Request is not yet valid' };
  const [accessKey, date, region, service, term] = q.get('X-Amz-Credential')!.split('/');
  if (
    accessKey !== ACCESS_KEY ||
    !date ||
    date !== amzDate.slice(0, 8) ||
    !region ||
    service !== 's3' ||
    term !== 'aws4_request'
  )
    return { code: 'InvalidAccessKeyId', message: 'unknown credential' };
  const signedHeaders = q.get('X-Amz-SignedHeaders')!.split(';');
  if (!signedHeaders.includes('host')) return { code: 'AccessDenied', message: 'host is not signed' };
  const canonicalHeaders = signedHeaders
    .map((h) => {
      const v = req.headers[h];
      return `${h}:${(Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalQuery = pairs
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    req.method,
    req.path,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders.join(';'),
    q.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
  const want = hmac(key, stringToSign);
  const got = Buffer.from(q.get('X-Amz-Signature')!, 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want))
    return {
      code: 'SignatureDoesNotMatch',
      message: 'The request signature we calculated does not match the signature you provided.',
    };
  return undefined;
}

function xmlError(ctx: KoaCtx, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

export async function startObjectStore(opts: ObjectStoreOptions): Promise<ObjectStore> {
  const log = (opts.logger ?? silentLogger()).child({ component: 'object-store' });
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const S3rver = require('s3rver') as new (o: Record<string, unknown>) => S3rverApp;
  const counts = { accepted: 0, refused: 0, badDigest: 0 };
  const app = new S3rver({
    address: '127.0.0.1',
    port: opts.port ?? 0,
    key: opts.tls.key,
    cert: opts.tls.cert,
    silent: true,
    directory: opts.dir,
    configureBuckets: [{ name: EVENTS_BUCKET }],
    allowMismatchedSignatures: false,
  });
  // In front of s3rver's own middleware: every write must carry a valid presigned signature.
  const verify: Middleware = async (ctx, next) => {
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      // Reads: presigned like writes (the dev cloud's own reads use presigned GETs).
      const bad = verifyPresigned(
        { method: ctx.method, path: ctx.path, rawQuery: ctx.querystring, headers: ctx.headers },
        SECRET_KEY,
        Date.now(),
      );
      if (bad) {
        counts.refused++;
        return xmlError(ctx, 403, bad.code, bad.message);
      }
      return next();
    }
    if (ctx.method !== 'PUT') {
      counts.refused++;
      return xmlError(ctx, 405, 'MethodNotAllowed', 'only presigned PUT and GET');
    }
    const bad = verifyPresigned(
      { method: ctx.method, path: ctx.path, rawQuery: ctx.querystring, headers: ctx.headers },
      SECRET_KEY,
      Date.now(),
    );
    const signed = new URLSearchParams(ctx.querystring).get('X-Amz-SignedHeaders')?.split(';') ?? [];
    if (!bad && (!signed.includes('content-length') || !signed.includes('x-amz-checksum-sha256'))) {
      counts.refused++;
      return xmlError(
        ctx,
        403,
        'AccessDenied',
        'the signature must bind content-length and x-amz-checksum-sha256',
      );
    }
    if (bad) {
      counts.refused++;
      log.warn({ code: bad.code, path: ctx.path }, 'object store: presigned PUT refused');
      return xmlError(ctx, 403, bad.code, bad.message);
    }
    await next();
    if (ctx.status !== 200) return;
    const [, bucket, ...rest] = ctx.path.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const file = app.store.getResourcePath(bucket!, key, 'object');
    const h = createHash('sha256');
    await pipeline(createReadStream(file), h);
    const want = String(ctx.headers['x-amz-checksum-sha256'] ?? '');
    if (h.digest('base64') !== want) {
      counts.badDigest++;
      await app.store.deleteObject(bucket!, key).catch(() => undefined);
      return xmlError(
        ctx,
        400,
        'BadDigest',
        'The SHA256 you specified did not match the calculated checksum.',
      );
    }
    counts.accepted++;
  };
  app.middleware.unshift(verify);
  const addr = await app.run();
  const host = `127.0.0.1:${addr.port}`;
  const url = `https://${host}`;
  const client = new S3Client({
    region: REGION,
    endpoint: url,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    // Only the checksum we ask for: no SDK-chosen CRC32 the camera would not know to send.
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  log.info({ url, bucket: EVENTS_BUCKET }, 'object store listening');
  return {
    url,
    host,
    bucket: EVENTS_BUCKET,
    caPem: opts.caPem,
    presignPut: (key, o) =>
      getSignedUrl(
        client,
        new PutObjectCommand({
          Bucket: EVENTS_BUCKET,
          Key: key,
          ContentLength: o.size,
          ChecksumSHA256: Buffer.from(o.sha256, 'hex').toString('base64'),
        }),
        {
          expiresIn: o.expiresInSeconds,
          signableHeaders: new Set(['content-length']),
          // A header the camera must send (and the signature binds), not a query value it could drop.
          unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
          ...(o.signingDate ? { signingDate: o.signingDate } : {}),
        },
      ),
    async get(key) {
      const u = new URL(
        await getSignedUrl(client, new GetObjectCommand({ Bucket: EVENTS_BUCKET, Key: key }), {
          expiresIn: 60,
        }),
      );
      return new Promise<Buffer | undefined>((resolve, reject) => {
        const req = https.get(
          { hostname: u.hostname, port: u.port, path: u.pathname + u.search, ca: opts.caPem, agent: false },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(chunks) : undefined));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
      });
    },
    counters: () => ({ ...counts }),
    close: () => app.close(),
  };
}
