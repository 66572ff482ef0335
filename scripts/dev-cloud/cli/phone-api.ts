/**
 * What the `lenscap-dev claim` and `member` verbs share: they act as a user's simulated phone
 * (keys under <dev-dir>/phones/<user>/, dir 0700, private keys 0600) and talk to the running dev
 * cloud's HTTP API as a phone app talks to its cloud — the cloud relays `claim.nonce`, `claim` and
 * `membership` to the camera and signs nothing. Development only.
 * Must never send a private key or the claim code to the cloud.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { LenscapError } from '../../../agent/errors.ts';
import type { ToolCode } from '../../dev-codes.ts';

export interface StackFile {
  pageUrl?: string;
  cameras?: Array<{ serial: string; claimCode?: string }>;
}

/** `<root>/stack.json` of the `npm start` that owns `devDir` (`<root>/dev`), if it is running. */
export function readStack(devDir: string): StackFile | undefined {
  const f = join(dirname(resolve(devDir)), 'stack.json');
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as StackFile;
  } catch {
    return undefined;
  }
}

/** The dev cloud's base URL: --cloud, else the running stack's page URL. */
export function cloudUrl(devDir: string, flag: string | undefined): string {
  const url = flag ?? readStack(devDir)?.pageUrl;
  if (!url)
    throw new LenscapError<ToolCode>(
      'ERR_CLI_USAGE',
      `no running stack found beside ${devDir} (stack.json): start it with npm start or pass --cloud URL`,
    );
  return url.replace(/\/+$/, '');
}

/** A refusal by the camera (its coded error), relayed by the cloud: exit 3, not a tool failure. */
export class CameraRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function callCloud(
  base: string,
  path: string,
  body?: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      ...(body
        ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
        : {}),
      signal: AbortSignal.timeout(20_000),
    });
  } catch (err) {
    throw new LenscapError<ToolCode>(
      'ERR_CLOUD_CONNECT',
      `dev cloud at ${base} unreachable: ${(err as Error).message}`,
    );
  }
  const data = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status === 409 && typeof data.error === 'string' && data.error.startsWith('ERR_'))
    throw new CameraRefusal(data.error, String(data.message ?? ''));
  if (!res.ok)
    throw new LenscapError<ToolCode>(
      'ERR_CLOUD_COMMAND',
      `${path}: HTTP ${res.status} ${String(data.error ?? '')} ${String(data.message ?? '')}`.trim(),
    );
  return data;
}

/** The payload of the membership the cloud relayed last for `serial` (the camera verified it). */
export async function relayedMembership(
  base: string,
  serial: string,
): Promise<{ epoch: string; version: number; members: Array<Record<string, unknown>> }> {
  const rec = await callCloud(base, `/api/membership?serial=${encodeURIComponent(serial)}`).catch((err) => {
    if (err instanceof LenscapError && / 404 /.test(err.message))
      throw new LenscapError<ToolCode>(
        'ERR_NOT_CLAIMED',
        `${serial} has no owner-signed membership: claim it first`,
      );
    throw err;
  });
  const jws = String(rec.jws ?? '');
  return JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8'));
}
