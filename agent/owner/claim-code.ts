/**
 * The claim secret: 160 random bits made at provisioning, printed once on the label as a code of
 * eight groups of four RFC 4648 base32 characters. It stays on the camera (0600) and on the label;
 * it never goes to the cloud. The claim proof (claim-proof.ts) is keyed by its bytes.
 * Must never log or return the secret.
 */
import { LenscapError } from '../errors.ts';

export const CLAIM_SECRET_BYTES = 20;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Encodes the secret as the label text, e.g. `ABCD-EFGH-…` (32 characters in 8 groups). */
export function formatClaimCode(secret: Uint8Array): string {
  if (secret.length !== CLAIM_SECRET_BYTES)
    throw new LenscapError('ERR_CLAIM_CODE_INVALID', `a claim secret is ${CLAIM_SECRET_BYTES} bytes`);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of secret) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join('-');
}

/**
 * Parses a typed or scanned code: case, spaces and dashes do not matter; anything else that is
 * not base32, or the wrong length, is ERR_CLAIM_CODE_INVALID (naming what is wrong, not the code).
 */
export function parseClaimCode(text: string): Buffer {
  if (typeof text !== 'string') throw new LenscapError('ERR_CLAIM_CODE_INVALID', 'claim code must be text');
  const clean = text.toUpperCase().replace(/[\s-]/g, '');
  if (clean.length !== 32)
    throw new LenscapError(
      'ERR_CLAIM_CODE_INVALID',
      `claim code has ${clean.length} characters, expected 32`,
    );
  const out = Buffer.alloc(CLAIM_SECRET_BYTES);
  let bits = 0;
  let value = 0;
  let i = 0;
  for (const ch of clean) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0)
      throw new LenscapError('ERR_CLAIM_CODE_INVALID', 'claim code has a character outside A-Z and 2-7');
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[i++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}
