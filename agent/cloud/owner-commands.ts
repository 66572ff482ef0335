/**
 * The owner-held trust ops on the cloud link: `claim.nonce`, `claim`, `membership`. The cloud
 * only relays them: each document is judged by OwnerTrust against the label secret or the owner's
 * key. Also the guard on the legacy `binding` op: once an owner has claimed the camera, a
 * cloud-signed binding is refused (and reported) — it cannot add anyone.
 * Must never let a payload reach OwnerTrust unvalidated, nor log one whole.
 */
import { z } from 'zod';
import { LenscapError } from '../errors.ts';
import { commandEnvelope, type CommandRegistry } from './commands.ts';
import type { OwnerTrust } from '../owner/owner-trust.ts';

const compactJws = z
  .string()
  .min(5)
  .max(60000)
  .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a compact JWS');

export const claimNonceSchema = commandEnvelope;
export const claimSchema = commandEnvelope.extend({
  nonce: z.string().min(8).max(128),
  proof: z.string().min(1).max(128),
  membership: compactJws,
});
export const membershipSchema = commandEnvelope.extend({ membership: compactJws });

export function registerOwnerCommands(registry: CommandRegistry, owner: OwnerTrust): void {
  registry.register({ op: 'claim.nonce', schema: claimNonceSchema, handle: () => owner.claimNonce() });
  registry.register({
    op: 'claim',
    schema: claimSchema,
    handle: (p) => owner.claim({ nonce: p.nonce, proof: p.proof, membership: p.membership }),
  });
  registry.register({
    op: 'membership',
    schema: membershipSchema,
    handle: (p) => owner.acceptMembership(p.membership),
  });
}

/** Wraps the legacy binding install: refused once the owner holds the camera. */
export function guardLegacyBinding<T>(
  owner: Pick<OwnerTrust, 'mode'>,
  accept: (jws: string) => T,
): (jws: string) => T {
  return (jws) => {
    if (owner.mode === 'owner-held')
      throw new LenscapError(
        'ERR_BINDING_OWNER_HELD',
        "the owner holds this camera: a cloud-signed binding cannot change who may view (send the owner's membership)",
      );
    return accept(jws);
  };
}
