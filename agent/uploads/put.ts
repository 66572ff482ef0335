/**
 * The HTTPS PUT of one sealed file to a presigned object-store URL (S3, MinIO, Ceph RGW): plain
 * node:https, the server certificate verified against the configured CA (or the system store), no
 * client certificate, `Content-Length` and `x-amz-checksum-sha256` (the headers the presigned
 * signature binds, computed here from the camera's own record, never taken from the cloud). The file
 * is hashed before the request, so a file that changed on disk is never sent as the recorded one.
 * Must never send to a URL that failed checkUploadUrl, never follow a redirect, and never put the
 * URL's query (the signature) in an error message.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { LenscapError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import type { SealedArtifact } from '../events/artifact.ts';
import type { UploadCode } from './codes.ts';
import { checkUploadUrl } from './upload-url.ts';

export interface PutOptions {
  url: string;
  artifact: Pick<SealedArtifact, 'path' | 'size' | 'sha256'>;
  /** uploads.host */
  uploadHost: string | undefined;
  /** PEM of the store's CA; undefined = the system store. */
  ca?: string | Buffer;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** The content type of every sealed object: the bytes are ciphertext whatever they hold. */
export const SEALED_CONTENT_TYPE = 'application/octet-stream';

const TLS_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME|EPROTO|SSL/i;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** Reads the CA file once per call site; a missing file is a configuration error, named. */
export function loadCa(file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch {
    throw new LenscapError('ERR_UPLOAD_TLS', `uploads.ca ${file} cannot be read`);
  }
}

/** S3's `<Code>…</Code>` and whether it says the presigned request expired. */
function storeError(body: string): { s3Code?: string; expired: boolean } {
  const code = /<Code>([A-Za-z]{1,64})<\/Code>/.exec(body)?.[1];
  const expired = /expired/i.test(/<Message>([^<]{0,300})<\/Message>/.exec(body)?.[1] ?? '');
  return { ...(code ? { s3Code: code } : {}), expired };
}

export async function putArtifact(o: PutOptions): Promise<void> {
  const u = checkUploadUrl(o.url, o.uploadHost);
  const shown = redactUrl(o.url);
  let size: number;
  try {
    size = statSync(o.artifact.path).size;
  } catch {
    throw new LenscapError('ERR_UPLOAD_FILE_MISMATCH', 'the sealed file is gone');
  }
  if (size !== o.artifact.size)
    throw new LenscapError(
      'ERR_UPLOAD_FILE_MISMATCH',
      `the sealed file has ${size} bytes, the record says ${o.artifact.size}`,
    );
  const hex = await sha256File(o.artifact.path);
  if (hex !== o.artifact.sha256)
    throw new LenscapError('ERR_UPLOAD_FILE_MISMATCH', 'the sealed file no longer has the recorded SHA-256');

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (code: UploadCode, message: string, detail?: Record<string, unknown>) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(new LenscapError(code, message, detail));
    };
    const req = https.request(
      {
        method: 'PUT',
        protocol: 'https:',
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port ? Number(u.port) : 443,
        path: `${u.pathname}${u.search}`,
        servername: /^[\d.]+$|:/.test(u.hostname) ? undefined : u.hostname,
        headers: {
          'content-length': String(o.artifact.size),
          'content-type': SEALED_CONTENT_TYPE,
          'x-amz-checksum-sha256': Buffer.from(hex, 'hex').toString('base64'),
        },
        ...(o.ca ? { ca: o.ca } : {}),
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        agent: false,
        timeout: o.timeoutMs,
        ...(o.signal ? { signal: o.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let got = 0;
        res.on('data', (c: Buffer) => {
          if (got < 4096) chunks.push(c);
          got += c.length;
        });
        res.on('error', () => fail('ERR_UPLOAD_NETWORK', `the store's answer broke off (${shown})`));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            if (settled) return;
            settled = true;
            return resolve();
          }
          const e = storeError(Buffer.concat(chunks).toString('utf8').slice(0, 4096));
          if (e.expired)
            return fail('ERR_UPLOAD_URL_EXPIRED', `the store refused the upload URL as expired (${shown})`, {
              status,
            });
          fail(
            'ERR_UPLOAD_HTTP_STATUS',
            `the store answered ${status}${e.s3Code ? ` ${e.s3Code}` : ''} (${shown})`,
            {
              status,
              ...(e.s3Code ? { s3Code: e.s3Code } : {}),
            },
          );
        });
      },
    );
    req.on('timeout', () =>
      fail('ERR_UPLOAD_TIMEOUT', `no answer from the store within ${o.timeoutMs} ms (${shown})`),
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (o.signal?.aborted) return fail('ERR_UPLOAD_OFFLINE', 'upload stopped');
      const code = err.code ?? '';
      if (TLS_ERRORS.test(code) || TLS_ERRORS.test(err.message))
        return fail(
          'ERR_UPLOAD_TLS',
          `the store's certificate did not verify: ${code || 'TLS error'} (${shown})`,
        );
      fail('ERR_UPLOAD_NETWORK', `the store is not reachable: ${code || 'network error'} (${shown})`);
    });
    const body = createReadStream(o.artifact.path);
    body.on('error', () => fail('ERR_UPLOAD_FILE_MISMATCH', 'the sealed file could not be read'));
    body.pipe(req);
  });
}
