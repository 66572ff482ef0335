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
  'key_not_bound',
  'proof_missing',
  'proof_invalid',
  'proof_replayed',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export function isRefusalReason(v: unknown): v is RefusalReason {
  return typeof v === 'string' && (REFUSAL_REASONS as readonly string[]).includes(v);
}
