/**
 * Proof of possession of the claim secret, relayed by the cloud without the secret crossing it:
 * HMAC-SHA256 keyed by the secret over (domain, owner key thumbprint, serial, camera nonce).
 * The thumbprint binds the proof to the claiming key (a relay cannot swap in its own key), the
 * serial to this camera, the single-use nonce to this one attempt (no replay).
 * Must never compare proofs in variable time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const DOMAIN = 'lenscap-claim-v1';

export function claimProof(secret: Uint8Array, p: { jkt: string; serial: string; nonce: string }): string {
  return createHmac('sha256', secret)
    .update([DOMAIN, p.jkt, p.serial, p.nonce].join('\n'))
    .digest('base64url');
}

export function claimProofMatches(
  secret: Uint8Array,
  p: { jkt: string; serial: string; nonce: string },
  proof: string,
): boolean {
  const want = Buffer.from(claimProof(secret, p), 'base64url');
  const got = Buffer.from(typeof proof === 'string' ? proof : '', 'base64url');
  return got.length === want.length && timingSafeEqual(got, want);
}
