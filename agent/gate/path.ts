/**
 * The gate's one media path, `/live/<serial>.flv`, for HTTP and WebSocket alike.
 * Must never match anything else (every other path is answered 404 and reaches nothing).
 */
const PATH = /^\/live\/([^/]+)\.flv$/;

/** The path's serial, or undefined for any other path or a broken escaping (answered 404). */
export function serialOfPath(rawUrl: string | undefined): string | undefined {
  const m = PATH.exec(new URL(rawUrl ?? '/', 'http://gate').pathname);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
}
