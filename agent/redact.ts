/**
 * The one redaction for URLs and for free text that may carry them (ffmpeg's and node-media-server's
 * messages), applied wherever such text reaches a log line, an audit line or a security event.
 * A relay URL's query and userinfo, and every path segment after the first on a media URL, may be a
 * stream key; the hub's per-run publish key rides in a query. Known secrets (registered by whoever
 * made or received them) are also cut wherever they appear, URL or not.
 * Must never return any part of a query, userinfo or fragment, nor a registered secret; never throw.
 */

/** Schemes whose path carries a stream key after the app (`rtmp://host/app/<key>`). */
const MEDIA_SCHEMES = new Set([
  'rtmp',
  'rtmps',
  'rtmpt',
  'rtmpe',
  'rtsp',
  'rtsps',
  'srt',
  'rtp',
  'tcp',
  'udp',
]);
/** Anything that looks like scheme://…, up to whitespace or a quote. */
const URL_IN_TEXT = /[A-Za-z][A-Za-z0-9+.-]{0,15}:\/\/[^\s'"<>`]+/g;
const REDACTED = '[redacted]';
/**
 * A presigned URL's signing parameters outside a URL (a bare `path?query`, an S3 error body, a
 * header dump): `X-Amz-Signature=…`, `X-Amz-Credential=…`, S3 v2 `Signature=…`/`AWSAccessKeyId=…`.
 */
const PRESIGNED_PARAM = /\b((?:X-Amz-[A-Za-z0-9-]+|Signature|AWSAccessKeyId|Expires)=)[^\s&'"<>`]+/gi;
/** A query after a path with no scheme (`/bucket/key?…`): everything after `?` up to whitespace. */
const BARE_QUERY = /(\/[^\s?'"<>`]*)\?(?!\[redacted\])[^\s'"<>`]+/g;
const MAX_SECRETS = 64;
const MIN_SECRET_LENGTH = 6;

/**
 * Secrets known to this process (the hub's publish key, each relay URL's key parts). Module-level
 * on purpose: ffmpeg and NMS text reaches loggers everywhere, and a forgotten call site must still
 * not leak a key that some other part registered. Bounded; oldest forgotten first.
 */
const known = new Set<string>();

export function registerSecret(secret: string | undefined): void {
  if (!secret || secret.length < MIN_SECRET_LENGTH) return;
  known.delete(secret);
  known.add(secret);
  while (known.size > MAX_SECRETS) known.delete(known.values().next().value as string);
}

/** Registers the parts of a URL that redactUrl would hide (query values, userinfo, key path segments). */
export function registerUrlSecrets(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return;
  }
  registerSecret(decodeSafe(u.username));
  registerSecret(decodeSafe(u.password));
  for (const v of u.searchParams.values()) registerSecret(v);
  if (u.search.length > 1) registerSecret(u.search.slice(1));
  if (MEDIA_SCHEMES.has(u.protocol.slice(0, -1).toLowerCase()))
    for (const seg of u.pathname.split('/').filter(Boolean).slice(1)) registerSecret(decodeSafe(seg));
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * scheme://host[:port] and the path (all of it for web URLs; only the first segment, the app, for
 * media URLs); userinfo, query and fragment become `[redacted]` markers.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return REDACTED;
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  const userinfo = u.username || u.password ? `${REDACTED}@` : '';
  let path = u.pathname;
  if (MEDIA_SCHEMES.has(scheme)) {
    const segs = path.split('/').filter(Boolean);
    path = segs.length === 0 ? '' : `/${segs[0]}${segs.length > 1 ? `/${REDACTED}` : ''}`;
  }
  const query = u.search ? `?${REDACTED}` : '';
  const fragment = u.hash ? `#${REDACTED}` : '';
  return scrubKnown(`${u.protocol}//${userinfo}${u.host}${path}${query}${fragment}`);
}

/** Free text (an ffmpeg error, an NMS line): every URL in it redacted, every known secret cut. */
export function redactText(text: string): string {
  if (typeof text !== 'string') return text;
  return scrubKnown(
    text
      .replace(URL_IN_TEXT, (m) => {
        // ffmpeg writes "<url>: <error>": trailing punctuation belongs to the sentence, not the URL.
        const tail = /[:,.;)\]]+$/.exec(m)?.[0] ?? '';
        return redactUrl(m.slice(0, m.length - tail.length)) + tail;
      })
      .replace(BARE_QUERY, (_m, path: string) => `${path}?${REDACTED}`)
      .replace(PRESIGNED_PARAM, (_m, name: string) => `${name}${REDACTED}`),
  );
}

function scrubKnown(text: string): string {
  let out = text;
  for (const s of known) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/** A copy of a log/audit/event object with every string redacted (depth- and size-bounded). */
export function redactValue<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (Array.isArray(value)) return value.slice(0, 1000).map((v) => redactValue(v, depth + 1)) as T;
  if (value instanceof Error) {
    // Still an Error (pino's err serializer keeps its type), with message and stack redacted.
    const copy = new Error(redactText(value.message));
    copy.name = value.name;
    copy.stack = value.stack === undefined ? undefined : redactText(value.stack);
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) (copy as { code?: unknown }).code = code;
    return copy as T;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = redactValue(v, depth + 1);
  return out as T;
}

/** Whether a string needs redaction at all (cheap pre-check for hot paths). */
export function mayNeedRedaction(text: string): boolean {
  if (text.includes('://') || text.includes('?') || /X-Amz-|Signature=/i.test(text)) return true;
  for (const s of known) if (text.includes(s)) return true;
  return false;
}
