/**
 * The closed error codes of agent/stream/ (capture, hub, push) and the media side it composes: every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const STREAM_CODES = [
  'ERR_CAMERA',
  'ERR_CAPTURE_EXITED',
  'ERR_FFMPEG_NOT_FOUND',
  'ERR_HUB_INGEST',
  'ERR_HUB_RUNNING',
  'ERR_PUSH_ACTIVE',
  'ERR_PUSH_EXITED',
  'ERR_PUSH_SEAL',
  'ERR_RTMP_AMF',
  'ERR_RTMP_CLOSED',
  'ERR_RTMP_PROTOCOL',
  'ERR_RTMP_REFUSED',
  'ERR_RTMP_TIMEOUT',
  'ERR_LED',
  'ERR_PRIVACY_SWITCH',
] as const;

export type StreamCode = (typeof STREAM_CODES)[number];
