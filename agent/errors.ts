/**
 * Typed errors with a stable `code` (like jose's ERR_JWT_EXPIRED), so callers, logs and tests
 * branch on the code and never on message text. Messages are for people; codes are the contract.
 * Must never carry a secret (token, key) in its message or detail.
 */
import type { AuditCode } from './audit/codes.ts';
import type { CliCode } from './cli/codes.ts';
import type { CloudCode } from './cloud/codes.ts';
import type { ConfigCode } from './config/codes.ts';
import type { EventsCode } from './events/codes.ts';
import type { GrantsCode } from './grants/codes.ts';
import type { IdentityCode } from './identity/codes.ts';
import type { OwnerCode } from './owner/codes.ts';
import type { SealingCode } from './sealing/codes.ts';
import type { StorageCode } from './storage/codes.ts';
import type { StreamCode } from './stream/codes.ts';
import type { UploadCode } from './uploads/codes.ts';

/** Codes no single room owns. */
export const SHARED_CODES = ['ERR_INTERNAL'] as const;

/**
 * Every code device code may raise: the union of each room's closed list (agent/<room>/codes.ts).
 * An unknown code is a type error, so a new one is added to its room's list (and docs) first.
 */
export type ErrorCode =
  | (typeof SHARED_CODES)[number]
  | AuditCode
  | CliCode
  | CloudCode
  | ConfigCode
  | EventsCode
  | GrantsCode
  | IdentityCode
  | OwnerCode
  | SealingCode
  | StorageCode
  | StreamCode
  | UploadCode;

/**
 * `C` is the room's code list; it defaults to every device code and is never inferred from the
 * argument (NoInfer), so `new LenscapError('ERR_TYPO', …)` fails the type check. Dev tools in
 * scripts/ name their own list: `new LenscapError<DevCode>(…)`.
 */
export class LenscapError<C extends string = ErrorCode> extends Error {
  readonly code: C;
  readonly detail: Record<string, unknown> | undefined;

  constructor(
    code: NoInfer<C>,
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

export function isLenscapError<C extends string = ErrorCode>(
  err: unknown,
  code?: NoInfer<C>,
): err is LenscapError<C> {
  return err instanceof LenscapError && (code === undefined || err.code === code);
}

/** One line a person can act on: "CODE: message". */
export function describeError(err: unknown): string {
  if (err instanceof LenscapError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
