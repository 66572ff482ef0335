/**
 * The public keys a member of an owner-signed membership may carry, checked strictly, and their
 * RFC 7638 thumbprints (the `jkt` a key-bound grant names in `cnf.jkt`).
 * - signing key: ECDSA P-256 (ES256) — DPoP proofs and, for the owner, the membership signature.
 * - sealing key: X25519 (HPKE DHKEM(X25519, HKDF-SHA256)) — what live video is sealed to.
 * Must never accept a JWK that carries a private part, and never thumbprint a non-canonical key.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { LenscapError, type ErrorCode } from '../errors.ts';

/** A P-256 public key, as WebCrypto exports it (extra members such as kid/alg/key_ops are dropped). */
export interface SigningJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** An X25519 public key for HPKE. */
export interface SealingJwk {
  kty: 'OKP';
  crv: 'X25519';
  x: string;
}

const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;

function bad(code: ErrorCode, what: string, why: string): never {
  throw new LenscapError(code, `${what}: ${why}`);
}

/** Checks a P-256 signing key; returns the canonical members only. Throws ERR_KEY_INVALID. */
export function parseSigningJwk(v: unknown, what = 'signing key'): SigningJwk {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    bad('ERR_KEY_INVALID', what, 'not a JWK object');
  const j = v as Record<string, unknown>;
  if ('d' in j) bad('ERR_KEY_INVALID', what, 'carries a private part');
  if (j.kty !== 'EC' || j.crv !== 'P-256') bad('ERR_KEY_INVALID', what, 'must be an EC P-256 key');
  if (typeof j.x !== 'string' || !B64URL_32.test(j.x) || typeof j.y !== 'string' || !B64URL_32.test(j.y))
    bad('ERR_KEY_INVALID', what, 'x and y must be 32-byte base64url');
  const jwk: SigningJwk = { kty: 'EC', crv: 'P-256', x: j.x, y: j.y };
  signingKeyObject(jwk, what); // the point must be on the curve
  return jwk;
}

/** Checks an X25519 sealing key; returns the canonical members only. Throws ERR_KEY_INVALID. */
export function parseSealingJwk(v: unknown, what = 'sealing key'): SealingJwk {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    bad('ERR_KEY_INVALID', what, 'not a JWK object');
  const j = v as Record<string, unknown>;
  if ('d' in j) bad('ERR_KEY_INVALID', what, 'carries a private part');
  if (j.kty !== 'OKP' || j.crv !== 'X25519') bad('ERR_KEY_INVALID', what, 'must be an OKP X25519 key');
  if (typeof j.x !== 'string' || !B64URL_32.test(j.x))
    bad('ERR_KEY_INVALID', what, 'x must be 32-byte base64url');
  const jwk: SealingJwk = { kty: 'OKP', crv: 'X25519', x: j.x };
  try {
    createPublicKey({ key: jwk as unknown as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    bad('ERR_KEY_INVALID', what, 'not a valid X25519 public key');
  }
  return jwk;
}

export function signingKeyObject(jwk: SigningJwk, what = 'signing key'): KeyObject {
  try {
    return createPublicKey({ key: jwk as unknown as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    bad('ERR_KEY_INVALID', what, 'not a valid P-256 public key');
  }
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, base64url. */
export function jwkThumbprint(jwk: SigningJwk | SealingJwk): string {
  const canonical =
    jwk.kty === 'EC'
      ? `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`
      : `{"crv":"${jwk.crv}","kty":"OKP","x":"${jwk.x}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}
