/**
 * One JSON POST over HTTPS to the provisioning service, trusting only the given CA (and, for
 * renewal, presenting the device certificate). Network and TLS failures become coded errors a
 * technician can act on; service errors keep the service's code.
 * Must never put the token or a key in an error message, and never fall back to system CAs.
 */
import https from 'node:https';
import { LenscapError } from '../errors.ts';
import { SERVICE_CODES, type IdentityCode } from './codes.ts';
import { CLIENT_ERRORS, errorResponse } from './protocol.ts';

export interface PostOptions {
  ca: string;
  /** Client certificate for mTLS (renewal). */
  key?: string;
  cert?: string;
  timeoutMs?: number;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
]);

export async function postJson(
  url: string,
  body: unknown,
  opts: PostOptions,
): Promise<{ status: number; json: unknown }> {
  const u = new URL(url);
  if (u.protocol !== 'https:')
    throw new LenscapError(CLIENT_ERRORS.usage, `the service URL must be https:// (got ${u.protocol})`);
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      u,
      {
        method: 'POST',
        ca: opts.ca,
        key: opts.key,
        cert: opts.cert,
        rejectUnauthorized: true,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
        timeout: opts.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 256 * 1024)
            req.destroy(new LenscapError(CLIENT_ERRORS.badResponse, 'the service sent more than 256 KiB'));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return reject(
              new LenscapError(
                CLIENT_ERRORS.badResponse,
                `the service answered HTTP ${res.statusCode} without JSON; is ${u.origin} the provisioning service?`,
              ),
            );
          }
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            const e = errorResponse.safeParse(json);
            // Only a code the protocol defines is passed on: the service's answer names the failure,
            // but it is input from the network, not a way to raise arbitrary codes on the camera.
            if (e.success && SERVICE_CODES.has(e.data.error.code))
              return reject(
                new LenscapError(e.data.error.code as IdentityCode, e.data.error.message, { status }),
              );
            return reject(
              new LenscapError(CLIENT_ERRORS.badResponse, `the service answered HTTP ${status}`, { status }),
            );
          }
          resolve({ status, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => reject(mapNetworkError(err, u)));
    req.end(payload);
  });
}

export type TlsFailureKind = 'not_tls' | 'client_cert_required' | 'untrusted' | 'name_mismatch' | 'other';

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/**
 * Which TLS failure this is, from Node's/OpenSSL's code and message. A plain (non-TLS) server
 * answers the ClientHello with bytes that are no TLS record ("wrong version number", "packet length
 * too long", EPROTO); a server that demands a client certificate ends the handshake with the
 * certificate_required alert (TLS 1.3) or a handshake_failure alert (TLS 1.2).
 */
export function classifyTlsFailure(code: string, message: string): TlsFailureKind {
  const text = `${code} ${message}`;
  if (UNTRUSTED.has(code)) return 'untrusted';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'name_mismatch';
  if (/CERTIFICATE_REQUIRED|certificate required|alert handshake failure|HANDSHAKE_FAILURE/i.test(text))
    return 'client_cert_required';
  if (
    /WRONG_VERSION_NUMBER|wrong version number|PACKET_LENGTH_TOO_LONG|packet length too long|unknown protocol|record layer failure|http request/i.test(
      text,
    ) ||
    code === 'EPROTO'
  )
    return 'not_tls';
  return 'other';
}

export function mapNetworkError(err: NodeJS.ErrnoException, u: URL): Error {
  if (err instanceof LenscapError) return err;
  const code = err.code ?? '';
  if (UNREACHABLE.has(code)) {
    return new LenscapError(
      CLIENT_ERRORS.unreachable,
      `cannot reach the provisioning service at ${u.host} (${code}); check the network cable/Wi-Fi, the URL and the firewall`,
      { code },
    );
  }
  if (code === 'CERT_NOT_YET_VALID') {
    // A freshly issued service certificate "not yet valid" almost always means this camera's clock is behind.
    return new LenscapError(
      CLIENT_ERRORS.clockSkew,
      `the service's certificate is not yet valid by this camera's clock (${new Date().toISOString()}); set the clock (NTP or date -s) and re-run`,
      { code },
    );
  }
  if (code === 'CERT_HAS_EXPIRED') {
    return new LenscapError(
      CLIENT_ERRORS.tls,
      `TLS failure with ${u.host}: the service certificate has expired by this camera's clock (${new Date().toISOString()}) — check the clock (date -u); if it is right, the service's certificate needs renewing`,
      { code },
    );
  }
  const tlsKind = classifyTlsFailure(code, err.message);
  if (tlsKind === 'not_tls') {
    return new LenscapError(
      CLIENT_ERRORS.tls,
      `${u.host} does not speak TLS (${code || err.message}): this is not a TLS port; check --url's port (the provisioning service's HTTPS port, not an HTTP or MQTT one)`,
      { code, kind: tlsKind },
    );
  }
  if (tlsKind === 'client_cert_required') {
    return new LenscapError(
      CLIENT_ERRORS.tls,
      `${u.host} asked for a client certificate (${code || err.message}): this is a mutual-TLS port (renewal or the broker), not the provisioning endpoint, which a camera without an identity must reach; check --url`,
      { code, kind: tlsKind },
    );
  }
  if (tlsKind === 'untrusted') {
    return new LenscapError(
      CLIENT_ERRORS.tls,
      `TLS failure with ${u.host} (${code}): the service's certificate is not signed by the CA given with --ca; check --ca (and that --url points at the provisioning service)`,
      { code, kind: tlsKind },
    );
  }
  if (tlsKind === 'name_mismatch') {
    return new LenscapError(
      CLIENT_ERRORS.tls,
      `TLS failure with ${u.host} (${code}): the service's certificate does not name ${u.hostname}; use the host name the certificate names in --url`,
      { code, kind: tlsKind },
    );
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|SSL|alert/i.test(code + ' ' + err.message)) {
    return new LenscapError(
      CLIENT_ERRORS.tls,
      `TLS failure with ${u.host} (${code || err.message}): the service's certificate is not signed by the CA given with --ca, or the URL's host is not in it; check --ca and --url`,
      { code },
    );
  }
  return new LenscapError(
    CLIENT_ERRORS.unreachable,
    `provisioning request to ${u.host} failed: ${code || err.message}`,
    { code },
  );
}
