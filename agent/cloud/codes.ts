/**
 * The closed error codes of agent/cloud/ (the MQTT link and its commands): every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const CLOUD_CODES = [
  'ERR_CLOUD_BACKOFF_CONFIG',
  'ERR_CLOUD_IDENTITY_MISSING',
  'ERR_CLOUD_LOOKUP',
  'ERR_CLOUD_NOT_AUTHORIZED',
  'ERR_CLOUD_NO_URL',
  'ERR_CLOUD_OFFLINE',
  'ERR_CLOUD_REFUSED_CONFIG',
  'ERR_CLOUD_SERIAL',
  'ERR_CLOUD_SUBSCRIBE_REFUSED',
  'ERR_CLOUD_TOPIC',
  'ERR_CLOUD_URL',
  'ERR_COMMAND_BAD_JSON',
  'ERR_COMMAND_BAD_OP',
  'ERR_COMMAND_BUSY',
  'ERR_COMMAND_DUPLICATE_OP',
  'ERR_COMMAND_FAILED',
  'ERR_COMMAND_FOREIGN_TOPIC',
  'ERR_COMMAND_ID_REUSED',
  'ERR_COMMAND_INVALID',
  'ERR_COMMAND_OP_NAME',
  'ERR_COMMAND_TOO_LARGE',
  'ERR_COMMAND_UNKNOWN_OP',
] as const;

export type CloudCode = (typeof CLOUD_CODES)[number];
