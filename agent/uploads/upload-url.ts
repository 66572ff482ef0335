/**
 * Getting a presigned upload URL from the cloud, per artifact, over the camera's own MQTT topics:
 * the camera publishes `req/upload.url` `{id, artifactId, kind, size, sha256, contentType}` (QoS 1),
 * and the cloud answers with the command `cmd/upload.url` `{id, requestId, artifactId, url, key,
 * expiresAt}` or `{id, requestId, artifactId, error: {code, message}}` (error codes closed:
 * UPLOAD_URL_REFUSALS); the camera replies on `reply/upload.url` like to any command. Also the check
 * every URL passes before a byte is sent: https, on the configured upload host, no userinfo.
 * Must never accept an answer for a request it did not make (or for another artifact), never act on
 * a URL that fails the check, and never log a URL's query (it is the signature). Its values are not
 * registered as known secrets: one upload per event would rotate the hub's and relays' keys out of
 * that bounded set; agent/redact.ts cuts every query and every X-Amz-* value by pattern instead.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import { commandEnvelope, type CommandRegistry } from '../cloud/commands.ts';
import type { SealedArtifact } from '../events/artifact.ts';
import type { UploadTimers } from './queue.ts';

export const UPLOAD_URL_OP = 'upload.url';

/** Why the cloud may refuse to hand out a URL (closed: anything else is a garbage answer). */
export const UPLOAD_URL_REFUSALS = [
  /** The artifact id does not belong to the asking serial. */
  'wrong_serial',
  /** Bigger than the cloud accepts for this kind. */
  'too_large',
  /** The request did not validate at the cloud. */
  'bad_request',
  /** The object store or the signer is down: retry later. */
  'unavailable',
] as const;

/** The request the camera publishes on `req/upload.url`. */
export interface UploadUrlRequest {
  id: string;
  artifactId: string;
  kind: SealedArtifact['kind'];
  size: number;
  sha256: string;
  contentType: SealedArtifact['contentType'];
}

export interface UploadTarget {
  url: string;
  /** The object key the cloud stores it under (published with the metadata). */
  key: string;
  /** ms epoch after which the URL no longer works (the cloud's word). */
  expiresAt: number;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,159}$/;

/** The command's envelope: everything else is checked by the handler, so garbage fails its request. */
export const uploadUrlSchema = commandEnvelope.extend({
  requestId: z.string().regex(ID_RE, 'a request id'),
  artifactId: z.unknown().optional(),
  url: z.unknown().optional(),
  key: z.unknown().optional(),
  expiresAt: z.unknown().optional(),
  error: z.unknown().optional(),
});

const answerSchema = z.union([
  z
    .object({
      artifactId: z.string().regex(ID_RE),
      url: z.string().min(8).max(8192),
      key: z.string().min(1).max(1024),
      expiresAt: z.number().int().positive(),
    })
    .strict(),
  z
    .object({
      artifactId: z.string().regex(ID_RE),
      error: z.object({ code: z.enum(UPLOAD_URL_REFUSALS), message: z.string().max(300) }).strict(),
    })
    .strict(),
]);

/**
 * The URL check, before any connection: https only, exactly the configured host (host[:port]; no
 * port in config means 443), no userinfo. Throws ERR_UPLOAD_URL_INVALID / _SCHEME / _HOST.
 */
export function checkUploadUrl(url: string, uploadHost: string | undefined): URL {
  if (!uploadHost)
    throw new LenscapError(
      'ERR_UPLOAD_NOT_CONFIGURED',
      'uploads.host is not set: no object store to upload to',
    );
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LenscapError('ERR_UPLOAD_URL_INVALID', 'the upload URL does not parse');
  }
  if (u.protocol !== 'https:')
    throw new LenscapError(
      'ERR_UPLOAD_URL_SCHEME',
      `the upload URL is ${u.protocol.replace(/:$/, '')}, not https: refused (${redactUrl(url)})`,
    );
  if (u.username || u.password)
    throw new LenscapError('ERR_UPLOAD_URL_INVALID', 'the upload URL carries userinfo: refused');
  const want = uploadHost.toLowerCase();
  const got = u.host.toLowerCase(); // URL drops the default :443
  const wantNorm = want.endsWith(':443') ? want.slice(0, -4) : want;
  if (got !== wantNorm)
    throw new LenscapError(
      'ERR_UPLOAD_URL_HOST',
      `the upload URL points at ${u.host}, not the configured upload host ${uploadHost}: refused`,
    );
  return u;
}

export interface UploadUrlDeps {
  publish(op: string, payload: UploadUrlRequest): Promise<void>;
  timers: UploadTimers;
  timeoutMs: number;
  logger: Logger;
}

export interface UploadUrlClient {
  /** Asks for a URL for `a`; resolves with it, or rejects with a coded error (timeout, refusal, garbage). */
  request(a: SealedArtifact, signal: AbortSignal): Promise<UploadTarget>;
  /** Registers the `upload.url` command (the cloud's answer). */
  register(registry: CommandRegistry): void;
  pending(): number;
}

export function createUploadUrlClient(deps: UploadUrlDeps): UploadUrlClient {
  const log = deps.logger.child({ component: 'uploads' });
  const waiting = new Map<
    string,
    { artifactId: string; resolve: (t: UploadTarget) => void; reject: (e: Error) => void; timer: unknown }
  >();
  const settle = (requestId: string) => {
    const w = waiting.get(requestId);
    if (!w) return undefined;
    waiting.delete(requestId);
    deps.timers.clearTimeout(w.timer);
    return w;
  };

  const handle = (p: z.infer<typeof uploadUrlSchema>) => {
    const w = waiting.get(p.requestId);
    if (!w)
      throw new LenscapError(
        'ERR_UPLOAD_URL_INVALID',
        'no upload URL request with this requestId is pending',
      );
    const r = answerSchema.safeParse({
      artifactId: p.artifactId,
      ...(p.url !== undefined ? { url: p.url } : {}),
      ...(p.key !== undefined ? { key: p.key } : {}),
      ...(p.expiresAt !== undefined ? { expiresAt: p.expiresAt } : {}),
      ...(p.error !== undefined ? { error: p.error } : {}),
    });
    settle(p.requestId);
    if (!r.success || r.data.artifactId !== w.artifactId) {
      const err = new LenscapError(
        'ERR_UPLOAD_URL_INVALID',
        r.success
          ? 'the answer names another artifact'
          : 'the cloud answered with something that is not an upload URL',
      );
      w.reject(err);
      throw err;
    }
    if ('error' in r.data) {
      const err = new LenscapError(
        'ERR_UPLOAD_URL_REFUSED',
        `the cloud refused an upload URL: ${r.data.error.code}`,
        { reason: r.data.error.code },
      );
      w.reject(err);
      return { accepted: false };
    }
    w.resolve({ url: r.data.url, key: r.data.key, expiresAt: r.data.expiresAt });
    return { accepted: true };
  };

  return {
    pending: () => waiting.size,
    register(registry) {
      registry.register({ op: UPLOAD_URL_OP, schema: uploadUrlSchema, handle });
    },
    request(a, signal) {
      const id = `u${randomBytes(9).toString('base64url')}`;
      return new Promise<UploadTarget>((resolve, reject) => {
        const onAbort = () => {
          settle(id);
          reject(new LenscapError('ERR_UPLOAD_OFFLINE', 'upload stopped'));
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        const done =
          <T>(fn: (v: T) => void) =>
          (v: T) => {
            signal.removeEventListener('abort', onAbort);
            fn(v);
          };
        const timer = deps.timers.setTimeout(() => {
          if (!settle(id)) return;
          done(reject)(
            new LenscapError(
              'ERR_UPLOAD_URL_TIMEOUT',
              `the cloud did not answer the upload URL request within ${deps.timeoutMs} ms`,
            ),
          );
        }, deps.timeoutMs);
        waiting.set(id, { artifactId: a.id, resolve: done(resolve), reject: done(reject), timer });
        deps
          .publish(UPLOAD_URL_OP, {
            id,
            artifactId: a.id,
            kind: a.kind,
            size: a.size,
            sha256: a.sha256,
            contentType: a.contentType,
          })
          .catch((err: unknown) => {
            const w = settle(id);
            if (!w) return;
            log.info({ id: a.id, err: (err as Error).message }, 'upload URL request not published');
            w.reject(
              new LenscapError(
                'ERR_UPLOAD_OFFLINE',
                'the upload URL request could not be published',
                undefined,
                {
                  cause: err,
                },
              ),
            );
          });
      });
    },
  };
}
