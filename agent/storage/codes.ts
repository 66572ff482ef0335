/**
 * The closed error codes of agent/storage/ (crash-safe files, the state dir's access checks): every
 * LenscapError raised here carries one of these. Adding one is a contract change. docs/identity.md's
 * provisioning table lists them (generated: `npm run docs:codes`).
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const STORAGE_CODES = {
  ERR_STATE_DIR_ACCESS: {
    when: 'the state dir or a file in it belongs to another user (named, with mode)',
    fix: '`sudo chown -R <user>: <state dir>` as the message says, or provision as that user',
  },
  ERR_STATE_DIR_NOT_DIR: {
    when: 'a file sits where the state dir (or a parent) should be',
    fix: 'move it away, or another `--state-dir`',
  },
} as const satisfies Record<string, { when: string; fix: string }>;

export type StorageCode = keyof typeof STORAGE_CODES;
