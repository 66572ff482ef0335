/**
 * The closed error codes of agent/events/ (motion detection, the pre-roll ring, snapshots and
 * clips, sealing to the membership): every LenscapError raised here carries one of these, and a
 * code logged under `code` or shown in the events status uses the same names. Adding one is a
 * contract change (docs/events.md lists them).
 * Must never import anything: errors.ts and the docs read it.
 */
export const EVENTS_CODES = [
  'ERR_EVENTS_NO_VIEWER_KEYS',
  'ERR_EVENTS_ANALYSIS',
  'ERR_EVENTS_SNAPSHOT',
  'ERR_EVENTS_CLIP',
  'ERR_EVENTS_SEAL',
  'ERR_EVENTS_SPOOL',
  'ERR_EVENTS_COMMAND',
] as const;

export type EventsCode = (typeof EVENTS_CODES)[number];
