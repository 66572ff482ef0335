/**
 * The closed error codes of agent/storage/ (crash-safe files, the state dir's access checks): every
 * LenscapError raised here carries one of these. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const STORAGE_CODES = ['ERR_STATE_DIR_ACCESS', 'ERR_STATE_DIR_NOT_DIR'] as const;

export type StorageCode = (typeof STORAGE_CODES)[number];
