/**
 * The closed set of refusal reasons. The same strings appear in error codes, audit lines,
 * security events, metrics and tests; adding one is a contract change (update docs/grants.md).
 */
export const REFUSAL_REASONS = [
  'missing',
  'malformed',
  'too_large',
  'alg_not_allowed',
  'wrong_type',
  'unknown_key',
  'bad_signature',
  'wrong_issuer',
  'wrong_audience',
  'expired',
  'not_yet_valid',
  'lifetime_too_long',
  'replayed',
  'viewer_not_bound',
  'not_claimed',
  'scope_not_allowed',
  'privacy_mode',
  'clock_untrusted',
  'relay_not_allowed',
  'too_many_viewers',
  'rate_limited',
  // A fault on the camera (audit write, an exception inside the grant gate, a closing gate): the
  // caller did nothing wrong, and the cloud's alarms must not say it did.
  'internal',
  // Push: the grant's viewer has no HPKE key in the owner-signed membership, so nothing can be sealed to them.
  'viewer_key_missing',
  // Owner-held mode (agent/owner): the grant is not bound to the member's key, or its DPoP proof is absent, wrong or reused.
  'key_not_bound',
  'proof_missing',
  'proof_invalid',
  'proof_replayed',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export function isRefusalReason(v: unknown): v is RefusalReason {
  return typeof v === 'string' && (REFUSAL_REASONS as readonly string[]).includes(v);
}
