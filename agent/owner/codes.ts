/**
 * The closed error codes of agent/owner/ (claim, membership, DPoP): every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const OWNER_CODES = [
  'ERR_CLAIM_ALREADY_CLAIMED',
  'ERR_CLAIM_CODE_INVALID',
  'ERR_CLAIM_DISABLED',
  'ERR_CLAIM_LOCKED',
  'ERR_CLAIM_NONCE',
  'ERR_CLAIM_NO_SECRET',
  'ERR_CLAIM_WRONG_PROOF',
  'ERR_MEMBERSHIP_INVALID',
  'ERR_MEMBERSHIP_NOT_CLAIMED',
  'ERR_MEMBERSHIP_NOT_OWNER',
  'ERR_MEMBERSHIP_ROLLBACK',
  'ERR_MEMBERSHIP_WRONG_EPOCH',
  'ERR_MEMBERSHIP_WRONG_SERIAL',
  'ERR_DPOP_BAD_SIGNATURE',
  'ERR_DPOP_MALFORMED',
  'ERR_DPOP_STALE',
  'ERR_DPOP_WRONG_GRANT',
  'ERR_DPOP_WRONG_KEY',
  'ERR_DPOP_WRONG_REQUEST',
  'ERR_OWNER_STATE_INVALID',
  'ERR_KEY_INVALID',
  'ERR_BINDING_OWNER_HELD',
] as const;

export type OwnerCode = (typeof OWNER_CODES)[number];
