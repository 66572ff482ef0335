/**
 * The closed error codes of agent/uploads/ (the on-device upload queue, the presigned-URL exchange,
 * the HTTPS PUT): every LenscapError raised here, every `lastError` and every `code` logged for an
 * upload failure uses one of these. Adding one is a contract change.
 * Must never import anything: errors.ts and the docs generator read it.
 */
export const UPLOAD_CODES = [
  /** enqueue() got a record that is not a SealedArtifact (shape, id, path outside the spool). */
  'ERR_UPLOAD_ARTIFACT_INVALID',
  /** The sealed file is gone, or its size or SHA-256 no longer match the record. */
  'ERR_UPLOAD_FILE_MISMATCH',
  /** uploads.host is not set: there is no object store this camera may upload to. */
  'ERR_UPLOAD_NOT_CONFIGURED',
  /** No cloud link, or it is down: nothing can be asked or published. */
  'ERR_UPLOAD_OFFLINE',
  /** The cloud did not answer the URL request in time. */
  'ERR_UPLOAD_URL_TIMEOUT',
  /** The cloud answered the URL request with an error of its own. */
  'ERR_UPLOAD_URL_REFUSED',
  /** The cloud's answer is not an upload URL (garbage, wrong artifact, unparsable URL). */
  'ERR_UPLOAD_URL_INVALID',
  /** The upload URL is not https. */
  'ERR_UPLOAD_URL_SCHEME',
  /** The upload URL is not on the configured upload host. */
  'ERR_UPLOAD_URL_HOST',
  /** The object store refused the presigned request as expired. */
  'ERR_UPLOAD_URL_EXPIRED',
  /** The object store answered with another non-2xx status. */
  'ERR_UPLOAD_HTTP_STATUS',
  /** The object store's certificate did not verify (CA, name, expiry). */
  'ERR_UPLOAD_TLS',
  /** Connection refused, reset, DNS: the store was not reachable. */
  'ERR_UPLOAD_NETWORK',
  /** The PUT took longer than uploads.putTimeoutMs. */
  'ERR_UPLOAD_TIMEOUT',
  /** The queue index could not be written (disk full, read-only): the artifact is not queued. */
  'ERR_UPLOAD_INDEX_IO',
  /** The metadata could not be published after the upload (retried; the upload is redone, idempotent). */
  'ERR_UPLOAD_PUBLISH',
] as const;

export type UploadCode = (typeof UPLOAD_CODES)[number];

/** Why the queue let an artifact go without uploading it (closed; counted and reported). */
export const DROP_REASONS = [
  /** Over uploads.maxBytes. */
  'bytes',
  /** Over uploads.maxCount. */
  'count',
  /** Free space on the spool's filesystem under uploads.minFreeBytes. */
  'free_space',
  /** One artifact larger than uploads.maxBytes: it could never fit. */
  'too_large',
  /** Its sealed file vanished or no longer matches its record. */
  'file_mismatch',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];
