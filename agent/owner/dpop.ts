/**
 * DPoP proofs (RFC 9449) for key-bound grants: a short JWT, `typ: dpop+jwt`, ES256, the signer's
 * public key in the header `jwk`, claims `htm`, `htu`, `jti`, `iat` and `ath` (base64url SHA-256 of
 * the grant it accompanies). Verification is pure; the replay cache of proof ids lives beside it.
 * Must never accept a proof whose key is not the grant's `cnf.jkt`, whose `htu`/`htm` name another
 * request, whose `iat` is outside the window, or that carries a private key.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { decodeB64url, JwsError } from '../grants/jws.ts';
import { jwkThumbprint, parseSigningJwk, signingKeyObject } from './jwk.ts';

export const DPOP_TYP = 'dpop+jwt';
const MAX_PROOF_BYTES = 2048;

/** Why a proof was refused: `proof_invalid` with a short code for logs and tests. */
export class DpopError {
  constructor(
    readonly code:
      | 'ERR_DPOP_MALFORMED'
      | 'ERR_DPOP_WRONG_KEY'
      | 'ERR_DPOP_BAD_SIGNATURE'
      | 'ERR_DPOP_WRONG_REQUEST'
      | 'ERR_DPOP_STALE'
      | 'ERR_DPOP_WRONG_GRANT',
    readonly message: string,
  ) {}
}

export interface DpopRequest {
  /** `GET` for the viewer gate, `PUSH` for `cmd/stream.start`. */
  htm: string;
  /** The request URL without query or fragment, e.g. `https://cam:8443/live/CAM-1.flv`. */
  htu: string;
}

/** The URL a proof is compared on: query and fragment dropped (RFC 9449 §4.3). */
export function normalizeHtu(url: string): string {
  const i = url.search(/[?#]/);
  return i < 0 ? url : url.slice(0, i);
}

export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

/**
 * Verifies a proof for `req`, made by the key whose thumbprint is `jkt`, for the grant `token`.
 * Returns the proof id and time; throws DpopError.
 */
export function verifyDpopProof(
  proof: string,
  opts: { req: DpopRequest; jkt: string; token: string; nowMs: number; windowSeconds: number },
): { jti: string; iat: number } {
  const fail = (code: DpopError['code'], message: string): never => {
    throw new DpopError(code, message);
  };
  if (typeof proof !== 'string' || proof.length === 0 || proof.length > MAX_PROOF_BYTES)
    fail('ERR_DPOP_MALFORMED', `proof must be 1..${MAX_PROOF_BYTES} characters`);
  const parts = proof.split('.');
  if (parts.length !== 3 || !parts[0] || !parts[1] || !parts[2])
    fail('ERR_DPOP_MALFORMED', 'proof is not a compact JWS');
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  let signature: Buffer;
  try {
    header = jsonObject(decodeB64url(parts[0]!, 'proof header'));
    payload = jsonObject(decodeB64url(parts[1]!, 'proof payload'));
    signature = decodeB64url(parts[2]!, 'proof signature');
  } catch (err) {
    return fail('ERR_DPOP_MALFORMED', err instanceof JwsError ? err.message : 'proof is not JSON');
  }
  if (header.typ !== DPOP_TYP) fail('ERR_DPOP_MALFORMED', `typ must be ${DPOP_TYP}`);
  if (header.alg !== 'ES256') fail('ERR_DPOP_MALFORMED', 'alg must be ES256');
  for (const k of ['crit', 'kid', 'jku', 'x5u', 'x5c', 'b64', 'zip'])
    if (k in header) fail('ERR_DPOP_MALFORMED', `header carries "${k}"`);
  let jwk;
  try {
    jwk = parseSigningJwk(header.jwk, 'proof jwk');
  } catch (err) {
    return fail('ERR_DPOP_MALFORMED', (err as Error).message);
  }
  // The key first: a proof by anyone but the grant's key holder says nothing about the grant.
  if (jwkThumbprint(jwk) !== opts.jkt) fail('ERR_DPOP_WRONG_KEY', "proof is not signed by the grant's key");
  const input = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
  let valid: boolean;
  try {
    valid =
      signature.length === 64 &&
      cryptoVerify('sha256', input, { key: signingKeyObject(jwk), dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    valid = false;
  }
  if (!valid) fail('ERR_DPOP_BAD_SIGNATURE', 'proof signature does not verify');
  const { htm, htu, jti, iat, ath } = payload;
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 128)
    fail('ERR_DPOP_MALFORMED', 'jti must be 8..128 characters');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) fail('ERR_DPOP_MALFORMED', 'iat must be a number');
  if (typeof htm !== 'string' || typeof htu !== 'string')
    fail('ERR_DPOP_MALFORMED', 'htm and htu are required');
  if (htm !== opts.req.htm || normalizeHtu(htu as string) !== normalizeHtu(opts.req.htu))
    fail('ERR_DPOP_WRONG_REQUEST', 'proof is for another request (htm/htu)');
  if (ath !== accessTokenHash(opts.token)) fail('ERR_DPOP_WRONG_GRANT', 'proof is for another grant (ath)');
  const skew = Math.abs(opts.nowMs / 1000 - (iat as number));
  if (skew > opts.windowSeconds)
    fail('ERR_DPOP_STALE', `proof iat is ${Math.round(skew)} s from now (window ${opts.windowSeconds} s)`);
  return { jti: jti as string, iat: iat as number };
}

function jsonObject(bytes: Buffer): Record<string, unknown> {
  if (bytes[0] !== 0x7b) throw new JwsError('malformed', 'not a JSON object');
  const v: unknown = JSON.parse(bytes.toString('utf8'));
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new JwsError('malformed', 'not a JSON object');
  return v as Record<string, unknown>;
}

/**
 * Proof ids seen, per key, until they fall out of the iat window. Bounded: when full, the caller
 * refuses new proofs (fail closed) rather than forgetting live ids.
 */
export class DpopReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowSeconds: number,
    private readonly maxEntries = 10_000,
  ) {}

  private key(jkt: string, jti: string): string {
    return `${jkt}:${jti}`;
  }

  has(jkt: string, jti: string, nowMs: number): boolean {
    this.prune(nowMs);
    return this.seen.has(this.key(jkt, jti));
  }

  /** Returns false when the cache is full of live ids (the caller refuses). */
  consume(jkt: string, jti: string, iat: number, nowMs: number): boolean {
    this.prune(nowMs);
    if (this.seen.size >= this.maxEntries) return false;
    this.seen.set(this.key(jkt, jti), (iat + this.windowSeconds) * 1000 + this.windowSeconds * 1000);
    return true;
  }

  private prune(nowMs: number): void {
    for (const [k, until] of this.seen) if (until <= nowMs) this.seen.delete(k);
  }
}
