/**
 * The dev provisioning service (wire format: agent/identity/protocol.ts), one HTTPS server:
 *   POST /v1/provision  one-time token + CSR → device cert, device CA, broker CA, trust root + bundle
 *   POST /v1/renew      CSR over mTLS with the current device cert → new device cert (fresh key)
 * The server asks every client for a certificate (trusting only the device CA) but requires one
 * only on /v1/renew. Requests that redeem tokens run one at a time, so a token is spent once.
 * Must never sign a CSR whose CN is not the serial the token (or the client cert) names, never log a
 * token (only the first hex digits of its hash), and never receive or hold a device private key.
 */
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';
import { systemClock, type Clock } from '../../agent/clock.ts';
import { isLenscapError, LenscapError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import {
  PROVISION_PATH,
  RENEW_PATH,
  SERVICE_ERRORS,
  provisionRequest,
  renewRequest,
  type ProvisionResponse,
  type RenewResponse,
} from '../../agent/identity/protocol.ts';
import { assertDeviceSerial, type CertOptions, type DevCa } from './ca.ts';
import { checkToken, markUsed, tokenRef } from './tokens.ts';
import type { ToolCode } from '../dev-codes.ts';

const MAX_BODY = 64 * 1024;

export interface ProvisioningServiceOptions {
  devDir: string;
  deviceCa: DevCa;
  /** Broker CA bundle handed to cameras (the server CA, PEM). */
  brokerCaPem: string;
  /** This service's TLS key and cert (server CA). */
  tls: { key: string; cert: string };
  /** Trust root (public JWK) and current trust bundle; read per request so a rotation is picked up. */
  trust: () => Promise<{ trustRootJwk: Record<string, unknown>; trustBundle: string }>;
  host?: string;
  port?: number;
  clock?: Clock;
  logger?: Logger;
  /** Validity of issued device certs (tests make short-lived ones); default 365 days from now − 5 min. */
  certOptions?: (kind: 'provision' | 'renew', serial: string) => CertOptions;
}

export interface ProvisioningService {
  /** https://HOST:PORT (no path). */
  url: string;
  port: number;
  counters(): { provisioned: number; replayed: number; renewed: number; refused: number };
  close(): Promise<void>;
}

class HttpError extends LenscapError<ToolCode> {}

function fail(code: ToolCode, message: string, status: number): HttpError {
  return new HttpError(code, message, { status });
}

/** SHA-256 of the SubjectPublicKeyInfo DER (hex): the same value for a CSR key and a cert key. */
function spkiFingerprint(pem: string): string {
  return createHash('sha256')
    .update(createPublicKey(pem).export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

function csrKeyFingerprint(csrPem: string): string {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch {
    throw fail(SERVICE_ERRORS.badRequest, 'csr is not a PEM PKCS#10 request with an RSA key', 400);
  }
  if (!csr.publicKey) throw fail(SERVICE_ERRORS.badRequest, 'csr carries no public key', 400);
  return spkiFingerprint(forge.pki.publicKeyToPem(csr.publicKey));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY)
      throw fail(SERVICE_ERRORS.badRequest, `request body larger than ${MAX_BODY} bytes`, 413);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw fail(SERVICE_ERRORS.badRequest, 'request body is not JSON', 400);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** CA errors on a CSR → the service's codes (a CSR for another CN is a bad request on /provision). */
function csrError(err: unknown, onSerialMismatch: ToolCode, status: number): never {
  if (isLenscapError<ToolCode>(err, 'ERR_CSR_SERIAL_MISMATCH'))
    throw fail(onSerialMismatch, err.message, status);
  if (err instanceof LenscapError) throw fail(SERVICE_ERRORS.badRequest, err.message, 400);
  throw err;
}

export async function startProvisioningService(
  opts: ProvisioningServiceOptions,
): Promise<ProvisioningService> {
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? silentLogger();
  const host = opts.host ?? '127.0.0.1';
  const counters = { provisioned: 0, replayed: 0, renewed: 0, refused: 0 };
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const certOptions = (kind: 'provision' | 'renew', serial: string): CertOptions => ({
    notBefore: new Date(clock.now() - 5 * 60_000),
    ...opts.certOptions?.(kind, serial),
  });
  const base = () => ({
    chainPem: '',
    deviceCaPem: opts.deviceCa.certPem,
    serverTime: new Date(clock.now()).toISOString(),
  });
  let url = '';

  async function provision(req: IncomingMessage): Promise<ProvisionResponse> {
    const parsed = provisionRequest.safeParse(await readJson(req));
    if (!parsed.success)
      throw fail(
        SERVICE_ERRORS.badRequest,
        `expected {serial, token, csr}: ${parsed.error.issues.map((i) => i.path.join('.') || '(body)').join(', ')}`,
        400,
      );
    const { serial, token, csr } = parsed.data;
    try {
      assertDeviceSerial(serial);
    } catch (err) {
      throw fail(SERVICE_ERRORS.badRequest, (err as Error).message, 400);
    }
    const fingerprint = csrKeyFingerprint(csr);
    return serialized(async () => {
      const redemption = checkToken(opts.devDir, token, serial, fingerprint, clock);
      let certPem: string;
      if (redemption.kind === 'replay') {
        certPem = redemption.record.certPem!;
        counters.replayed += 1;
        log.info(
          { serial, token: tokenRef(token) },
          'provisioning: token redeemed again by the same key; same certificate returned',
        );
      } else {
        try {
          certPem = opts.deviceCa.signDeviceCsr(csr, serial, certOptions('provision', serial));
        } catch (err) {
          csrError(err, SERVICE_ERRORS.badRequest, 400);
        }
        // Spent before the reply leaves: a crash after this point is covered by the same-key replay.
        markUsed(opts.devDir, token, redemption.record, fingerprint, certPem, clock);
        counters.provisioned += 1;
        log.info({ serial, token: tokenRef(token) }, 'provisioning: device certificate issued');
      }
      const trust = await opts.trust();
      return {
        serial,
        certPem,
        ...base(),
        brokerCaPem: opts.brokerCaPem,
        trustRootJwk: trust.trustRootJwk,
        trustBundle: trust.trustBundle,
        renewUrl: `${url}${RENEW_PATH}`,
      };
    });
  }

  async function renew(req: IncomingMessage): Promise<RenewResponse> {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate?.();
    if (!socket.authorized || !peer?.raw) {
      throw fail(
        SERVICE_ERRORS.renewUnauthenticated,
        `renewal needs a valid device certificate from the device CA (${socket.authorizationError ?? 'none presented'})`,
        401,
      );
    }
    const current = new X509Certificate(peer.raw);
    const serial = /(?:^|\n)CN=([^\n]+)/.exec(current.subject)?.[1] ?? '';
    try {
      assertDeviceSerial(serial);
    } catch {
      throw fail(
        SERVICE_ERRORS.renewUnauthenticated,
        'the client certificate is not a device certificate',
        401,
      );
    }
    const parsed = renewRequest.safeParse(await readJson(req));
    if (!parsed.success) throw fail(SERVICE_ERRORS.badRequest, 'expected {csr}', 400);
    const fingerprint = csrKeyFingerprint(parsed.data.csr);
    if (
      fingerprint === spkiFingerprint(current.publicKey.export({ type: 'spki', format: 'pem' }) as string)
    ) {
      throw fail(SERVICE_ERRORS.badRequest, 'renewal needs a fresh key: the CSR reuses the current key', 400);
    }
    let certPem: string;
    try {
      certPem = opts.deviceCa.signDeviceCsr(parsed.data.csr, serial, certOptions('renew', serial));
    } catch (err) {
      csrError(err, SERVICE_ERRORS.renewSerialMismatch, 403);
    }
    counters.renewed += 1;
    log.info({ serial }, 'renewal: device certificate issued');
    return { serial, certPem, ...base() };
  }

  const server = https.createServer(
    {
      key: opts.tls.key,
      cert: opts.tls.cert,
      ca: opts.deviceCa.certPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const handler = path === PROVISION_PATH ? provision : path === RENEW_PATH ? renew : undefined;
      if (!handler)
        return send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: `no such endpoint ${path}` } });
      if (req.method !== 'POST')
        return send(res, 405, { error: { code: 'ERR_METHOD', message: 'POST only' } });
      handler(req).then(
        (body) => send(res, 200, body),
        (err: unknown) => {
          counters.refused += 1;
          if (err instanceof LenscapError) {
            const status = typeof err.detail?.status === 'number' ? err.detail.status : 400;
            log.warn({ path, code: err.code }, 'provisioning service refused a request');
            send(res, status, { error: { code: err.code, message: err.message } });
          } else {
            log.error({ path, err: (err as Error).message }, 'provisioning service error');
            send(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
          }
        },
      );
    },
  );
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url }, 'provisioning service listening');
  return {
    url,
    port,
    counters: () => ({ ...counters }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
