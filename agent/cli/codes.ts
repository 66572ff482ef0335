/**
 * The closed error codes of agent/cli/ (the lenscap verbs): every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const CLI_CODES = ['ERR_CLI_USAGE', 'ERR_NO_SERIAL', 'ERR_RESET_NOT_ROOT', 'ERR_DEV_ALIAS'] as const;

export type CliCode = (typeof CLI_CODES)[number];
