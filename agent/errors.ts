/**
 * Typed errors with a stable `code` (like jose's ERR_JWT_EXPIRED), so callers, logs and tests
 * branch on the code and never on message text. Messages are for people; codes are the contract.
 * Must never carry a secret (token, key) in its message or detail.
 */
export class LenscapError extends Error {
  readonly code: string;
  readonly detail: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    detail?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LenscapError';
    this.code = code;
    this.detail = detail;
  }
}

export function isLenscapError(err: unknown, code?: string): err is LenscapError {
  return err instanceof LenscapError && (code === undefined || err.code === code);
}

/** One line a person can act on: "CODE: message". */
export function describeError(err: unknown): string {
  if (err instanceof LenscapError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
