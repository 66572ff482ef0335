/**
 * The closed error codes of agent/audit/ (decision log, event queue): every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const AUDIT_CODES = ['ERR_AUDIT_LOG_UNSAFE', 'ERR_EVENT_QUEUE_IO'] as const;

export type AuditCode = (typeof AUDIT_CODES)[number];
