/**
 * The closed error codes of agent/sealing/ (HPKE + AES-GCM media sealing): every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const SEALING_CODES = [
  'ERR_SEAL_ENVELOPE',
  'ERR_SEAL_FORMAT',
  'ERR_SEAL_KEY_ID',
  'ERR_SEAL_KID',
  'ERR_SEAL_NOT_FOR_YOU',
  'ERR_SEAL_NOT_SEALED',
  'ERR_SEAL_NOT_VIDEO',
  'ERR_SEAL_NO_KEY',
  'ERR_SEAL_REPLAY',
  'ERR_SEAL_SESSION',
  'ERR_SEAL_TAMPERED',
  'ERR_SEAL_TRUNCATED',
  'ERR_SEAL_VERSION',
  'ERR_SEAL_VIEWER_KEY',
  'ERR_FLV_HEADER',
  'ERR_FLV_TAG',
] as const;

export type SealingCode = (typeof SEALING_CODES)[number];
