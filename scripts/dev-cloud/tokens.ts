/**
 * One-time provisioning tokens: each bound to one serial and an expiry, persisted as one file per
 * token named by the token's SHA-256 (the token itself is never stored or logged), so a token made
 * by `lenscap-dev token` in another process is seen by the running service without a shared
 * file to race on. A token is spent by its first successful use; the same CSR key may redeem it
 * again (a camera that lost the response can finish), any other reuse is refused.
 * Must never accept an unknown, expired or spent token, nor one for another serial.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock, type Clock } from '../../agent/clock.ts';
import { LenscapError } from '../../agent/errors.ts';
import { SERVICE_ERRORS } from '../../agent/identity/protocol.ts';
import { writeFileAtomic } from '../../agent/storage/atomic-file.ts';
import { assertDeviceSerial } from './ca.ts';
import { devLayout } from './layout.ts';
import type { ToolCode } from '../dev-codes.ts';

export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
const TOKEN_RE = /^lct_[A-Za-z0-9_-]{43}$/;

export interface TokenRecord {
  serial: string;
  createdAt: string;
  expiresAt: string;
  /** Set on first successful redemption. */
  usedAt?: string;
  /** SHA-256 of the redeeming CSR's public key (SPKI DER, hex). */
  keyFingerprint?: string;
  /** The certificate issued on redemption (public), replayed to the same key. */
  certPem?: string;
}

export function tokenId(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A short, non-secret handle for logs: the first 12 hex digits of the token's hash. */
export function tokenRef(token: string): string {
  return tokenId(token).slice(0, 12);
}

function recordFile(devDir: string, token: string): string {
  return join(devLayout(devDir).tokensDir, `${tokenId(token)}.json`);
}

/** Makes and persists a fresh token for `serial`; returns the token (shown once). */
export async function createToken(
  devDir: string,
  serial: string,
  ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS,
  clock: Clock = systemClock,
): Promise<string> {
  assertDeviceSerial(serial);
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0)
    throw new LenscapError<ToolCode>(
      'ERR_CLI_USAGE',
      `token ttl must be a positive number of seconds, got ${ttlSeconds}`,
    );
  const dir = devLayout(devDir).tokensDir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = `lct_${randomBytes(32).toString('base64url')}`;
  const now = clock.now();
  const rec: TokenRecord = {
    serial,
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ttlSeconds * 1000).toISOString(),
  };
  writeFileAtomic(recordFile(devDir, token), JSON.stringify(rec), 0o600);
  return token;
}

export interface Redemption {
  /** 'new': issue a certificate, then call `markUsed`; 'replay': return the stored certificate. */
  kind: 'new' | 'replay';
  record: TokenRecord;
}

function refuse(code: ToolCode, message: string, status: number): LenscapError<ToolCode> {
  return new LenscapError<ToolCode>(code, message, { status });
}

/**
 * Checks a token for `serial` and the CSR key `keyFingerprint`, in this order: known, bound to this
 * serial, spent (unless by the same key), expired. Does not spend it: call `markUsed` once the
 * certificate exists, so a failed signing leaves the token usable.
 */
export function checkToken(
  devDir: string,
  token: string,
  serial: string,
  keyFingerprint: string,
  clock: Clock = systemClock,
): Redemption {
  const file = TOKEN_RE.test(token) ? recordFile(devDir, token) : undefined;
  if (!file || !existsSync(file))
    throw refuse(
      SERVICE_ERRORS.tokenInvalid,
      'unknown provisioning token (check that it was copied whole)',
      401,
    );
  let rec: TokenRecord;
  try {
    rec = JSON.parse(readFileSync(file, 'utf8')) as TokenRecord;
  } catch {
    throw refuse(SERVICE_ERRORS.tokenInvalid, 'provisioning token record is unreadable', 401);
  }
  if (rec.serial !== serial)
    throw refuse(SERVICE_ERRORS.serialNotAllowed, `this token is for another serial, not ${serial}`, 403);
  if (rec.usedAt) {
    if (rec.keyFingerprint === keyFingerprint && rec.certPem) return { kind: 'replay', record: rec };
    throw refuse(
      SERVICE_ERRORS.tokenUsed,
      `this token was already used (at ${rec.usedAt}); ask for a new one`,
      409,
    );
  }
  if (clock.now() >= Date.parse(rec.expiresAt))
    throw refuse(
      SERVICE_ERRORS.tokenExpired,
      `this token expired at ${rec.expiresAt}; ask for a new one`,
      401,
    );
  return { kind: 'new', record: rec };
}

/** Spends the token, recording the key and certificate it was redeemed for (persisted before the reply). */
export function markUsed(
  devDir: string,
  token: string,
  rec: TokenRecord,
  keyFingerprint: string,
  certPem: string,
  clock: Clock = systemClock,
): void {
  const used: TokenRecord = { ...rec, usedAt: new Date(clock.now()).toISOString(), keyFingerprint, certPem };
  writeFileAtomic(recordFile(devDir, token), JSON.stringify(used), 0o600);
}
