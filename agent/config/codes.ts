/**
 * The closed error codes of agent/config/ (loading, migrating and validating the config file): every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const CONFIG_CODES = [
  'ERR_CONFIG_INVALID',
  'ERR_CONFIG_JSON',
  'ERR_CONFIG_READ',
  'ERR_CONFIG_VERSION',
] as const;

export type ConfigCode = (typeof CONFIG_CODES)[number];
