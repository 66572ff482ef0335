/**
 * The owner-held flows driven through the dev cloud's real MQTT command path, as a phone would
 * drive them through a real cloud: claim with the label code (nonce → HMAC proof → owner-signed
 * membership), then membership updates signed by the owner. The cloud relays; the camera judges.
 * Development and tests only.
 */
import { LenscapError } from '../../agent/errors.ts';
import type { CloudClient } from './cloud-client.ts';
import { readMembership, recordMembership } from './memberships.ts';
import { makeClaim, memberOf, signMembership, type MemberEntry, type PhoneKeys } from './owner-phone.ts';
import type { ToolCode } from '../dev-codes.ts';

type Command = CloudClient['command'];

async function ok(
  command: Command,
  serial: string,
  op: string,
  payload: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const reply = await command(serial, op, payload, 10_000);
  if (reply.status !== 'ok')
    throw new LenscapError<ToolCode>(
      (reply.error?.code as ToolCode | undefined) ?? 'ERR_COMMAND_FAILED',
      `${serial} refused ${op}: ${reply.error?.message ?? '?'}`,
    );
  return (reply.data ?? {}) as Record<string, unknown>;
}

/** Claims `serial` for `owner` with the label's `code`; `viewers` join in the first membership. */
export async function claimWithCode(
  command: Command,
  p: { devDir: string; serial: string; code: string; owner: PhoneKeys; viewers?: PhoneKeys[] },
): Promise<{ version: number; epoch: string }> {
  const { nonce } = (await ok(command, p.serial, 'claim.nonce', {})) as { nonce: string };
  const claim = makeClaim(p.owner, {
    code: p.code,
    serial: p.serial,
    nonce,
    viewers: (p.viewers ?? []).map((v) => memberOf(v, 'viewer')),
  });
  await ok(command, p.serial, 'claim', claim);
  const rec = recordMembership(p.devDir, claim.membership);
  return { version: rec.version, epoch: rec.epoch };
}

/** Sends a new membership signed by `signer` (the current owner); version = last relayed + 1. */
export async function updateMembership(
  command: Command,
  p: { devDir: string; serial: string; signer: PhoneKeys; members: MemberEntry[] },
): Promise<{ version: number }> {
  const last = readMembership(p.devDir, p.serial);
  if (!last)
    throw new LenscapError<ToolCode>(
      'ERR_NOT_CLAIMED',
      `${p.serial} has no relayed membership: claim it first`,
    );
  const jws = signMembership(p.signer, {
    serial: p.serial,
    epoch: last.epoch,
    version: last.version + 1,
    members: p.members,
  });
  await ok(command, p.serial, 'membership', { membership: jws });
  return { version: recordMembership(p.devDir, jws).version };
}
