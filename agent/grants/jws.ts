/**
 * Strict compact JWS (RFC 7515) parsing, verification and signing with Node's native crypto.
 * jose was measured at half the throughput of crypto.verify here, and the camera must refuse a
 * flood of garbage cheaply, so the parser is hand-written and strict: canonical base64url only,
 * JSON objects only without duplicate keys, size-bounded before anything is decoded.
 * Must never accept `none`, an HMAC alg, embedded keys or `crit`; must never throw anything but
 * JwsError (callers map its reason straight into a refusal).
 */
import { createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { duplicateKey } from '../strict-json.ts';
import type { RefusalReason } from './reasons.ts';

export type JwsAlg = 'EdDSA' | 'ES256';
export const SUPPORTED_ALGS: readonly JwsAlg[] = ['EdDSA', 'ES256'];

export class JwsError extends Error {
  readonly reason: RefusalReason;

  constructor(reason: RefusalReason, message: string) {
    // A refusal is an expected outcome, not a bug: capturing a stack trace would cost more than
    // every cheap check together and make garbage floods expensive.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.reason = reason;
    this.name = 'JwsError';
  }
}

export interface ParsedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** `base64url(header).base64url(payload)`: the bytes that were signed. */
  signingInput: Buffer;
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Decodes base64url, refusing padding, foreign characters and non-canonical encodings. */
const B64URL_VALUE = new Int8Array(128).fill(-1);
for (const [i, ch] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries())
  B64URL_VALUE[ch.charCodeAt(0)] = i;

export function decodeB64url(part: string, what: string): Buffer {
  const rem = part.length % 4;
  if (rem === 1 || !B64URL.test(part)) throw new JwsError('malformed', `${what}: not base64url`);
  // One token, one spelling: the unused low bits of the last character must be zero (checked in
  // O(1) rather than by re-encoding; the signature covers the text, so this is strictness, not
  // the only line of defence).
  if (rem !== 0) {
    const last = B64URL_VALUE[part.charCodeAt(part.length - 1)]!;
    if ((rem === 2 && (last & 0x0f) !== 0) || (rem === 3 && (last & 0x03) !== 0))
      throw new JwsError('malformed', `${what}: non-canonical base64url`);
  }
  return Buffer.from(part, 'base64url');
}

function decodeJsonObject(part: string, what: string): Record<string, unknown> {
  const bytes = decodeB64url(part, what);
  // Only a JSON object can pass, and it starts with "{": refusing anything else here spares
  // JSON.parse (and its SyntaxError stack trace) the bulk of random garbage.
  if (bytes[0] !== 0x7b) throw new JwsError('malformed', `${what}: not a JSON object`);
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new JwsError('malformed', `${what}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new JwsError('malformed', `${what}: not a JSON object`);
  // JSON.parse keeps the last of two equal keys; another verifier may keep the first. Refused, so
  // the camera and any cloud-side validator cannot disagree about what a signed document says.
  const dup = duplicateKey(text);
  if (dup !== undefined)
    throw new JwsError('malformed', `${what}: duplicate key ${JSON.stringify(dup.slice(0, 40))}`);
  return value as Record<string, unknown>;
}

/**
 * Every grant from one issuer key carries the same header text, so decoded headers are kept by
 * their exact text (frozen; bounded, cleared when full). Only decoding is cached: the header
 * checks run on every token.
 */
const headerCache = new Map<string, Readonly<Record<string, unknown>>>();
const HEADER_CACHE_MAX = 64;

function decodeHeader(h: string): Record<string, unknown> {
  const cached = headerCache.get(h);
  if (cached) return cached as Record<string, unknown>;
  const header = Object.freeze(decodeJsonObject(h, 'header'));
  if (headerCache.size >= HEADER_CACHE_MAX) headerCache.clear();
  headerCache.set(h, header);
  return header as Record<string, unknown>;
}

/** Size and shape only: three non-empty base64url parts, JSON header and payload. No crypto. */
export function parseCompact(token: string, maxBytes: number): ParsedJws {
  if (token.length > maxBytes)
    throw new JwsError('too_large', `token is ${token.length} bytes, limit ${maxBytes}`);
  const parts = token.split('.');
  if (parts.length !== 3)
    throw new JwsError('malformed', `expected 3 dot-separated parts, found ${parts.length}`);
  const [h, p, s] = parts as [string, string, string];
  // An empty signature is left to the header check (alg "none" is refused by name there).
  if (!h || !p) throw new JwsError('malformed', 'empty JWS header or payload');
  const header = decodeHeader(h);
  const payload = decodeJsonObject(p, 'payload');
  const signature = decodeB64url(s, 'signature');
  return { header, payload, signingInput: Buffer.from(`${h}.${p}`, 'ascii'), signature };
}

const FORBIDDEN_HEADER_KEYS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip'];

/**
 * Header checks shared by every JWS the camera accepts: explicit `typ`, an allowed `alg`, a `kid`,
 * and no key material or extensions that would let the token choose its own verification.
 */
export function checkHeader(
  header: Record<string, unknown>,
  expectedTyp: string,
  allowedAlgs: readonly JwsAlg[],
): { alg: JwsAlg; kid: string } {
  const alg = header.alg;
  if (typeof alg !== 'string' || !(allowedAlgs as readonly string[]).includes(alg)) {
    throw new JwsError('alg_not_allowed', `alg ${JSON.stringify(alg)} is not allowed`);
  }
  if (header.typ !== expectedTyp)
    throw new JwsError('wrong_type', `typ ${JSON.stringify(header.typ)}, expected ${expectedTyp}`);
  for (const key of FORBIDDEN_HEADER_KEYS) {
    if (key in header)
      throw new JwsError(key === 'crit' ? 'malformed' : 'unknown_key', `header carries forbidden "${key}"`);
  }
  const kid = header.kid;
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128)
    throw new JwsError('unknown_key', 'missing or invalid kid');
  return { alg: alg as JwsAlg, kid };
}

export function verifySignature(alg: JwsAlg, key: KeyObject, jws: ParsedJws): boolean {
  try {
    if (alg === 'EdDSA') return cryptoVerify(null, jws.signingInput, key, jws.signature);
    if (jws.signature.length !== 64) return false;
    return cryptoVerify('sha256', jws.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jws.signature);
  } catch {
    return false;
  }
}

/** Signs a compact JWS (dev cloud and tests; the camera only verifies). */
export function signCompact(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  privateKey: KeyObject,
): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const input = Buffer.from(`${h}.${p}`);
  const alg = header.alg;
  const sig =
    alg === 'EdDSA'
      ? cryptoSign(null, input, privateKey)
      : cryptoSign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${h}.${p}.${sig.toString('base64url')}`;
}

export interface VerificationKey {
  kid: string;
  alg: JwsAlg;
  key: KeyObject;
}

/** Imports a public JWK, checking that its type matches its declared alg (no alg confusion). */
export function importPublicJwk(jwk: Record<string, unknown>): VerificationKey {
  const kid = jwk.kid;
  if (typeof kid !== 'string' || kid.length === 0) throw new JwsError('unknown_key', 'JWK without kid');
  if ('d' in jwk) throw new JwsError('malformed', `JWK ${kid} carries a private part`);
  let alg: JwsAlg;
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') alg = 'EdDSA';
  else if (jwk.kty === 'EC' && jwk.crv === 'P-256') alg = 'ES256';
  else
    throw new JwsError(
      'unknown_key',
      `JWK ${kid}: unsupported key type ${String(jwk.kty)}/${String(jwk.crv)}`,
    );
  if (jwk.alg !== undefined && jwk.alg !== alg)
    throw new JwsError('unknown_key', `JWK ${kid}: alg ${String(jwk.alg)} does not match its key type`);
  try {
    const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    return { kid, alg, key };
  } catch {
    throw new JwsError('unknown_key', `JWK ${kid}: not a valid public key`);
  }
}

/** A JWKS: `{keys: [...]}` → kid-indexed map. Duplicate kids are refused (ambiguous trust). */
export function importKeySet(jwks: unknown, what: string): Map<string, VerificationKey> {
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    throw new JwsError('malformed', `${what}: expected {keys: [...]}`);
  }
  const out = new Map<string, VerificationKey>();
  for (const jwk of (jwks as { keys: unknown[] }).keys) {
    if (typeof jwk !== 'object' || jwk === null)
      throw new JwsError('malformed', `${what}: key is not an object`);
    const k = importPublicJwk(jwk as Record<string, unknown>);
    if (out.has(k.kid)) throw new JwsError('malformed', `${what}: duplicate kid ${k.kid}`);
    out.set(k.kid, k);
  }
  return out;
}
