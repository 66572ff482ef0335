/**
 * The cloud link's `stream.start` {id, grant} and `stream.stop` {id, jti} ops: schemas plus calls
 * into the push service. A refusal is thrown as a LenscapError so the reply carries its code; the
 * grant gate has already audited it and queued the security event.
 */
import { z } from 'zod';
import { LenscapError } from '../errors.ts';
import { commandEnvelope, type CommandRegistry } from '../cloud/commands.ts';
import type { PushService } from './push.ts';

export const streamStartSchema = commandEnvelope.extend({
  grant: z.string().min(1).max(16384),
  /** Owner-held mode: the DPoP proof of the grant's key (htm PUSH, htu urn:lenscap:push:<serial>). */
  dpop: z.string().min(1).max(2048).optional(),
});
export const streamStopSchema = commandEnvelope.extend({ jti: z.string().min(1).max(128) });

export function registerStreamCommands(registry: CommandRegistry, push: PushService): void {
  registry.register({
    op: 'stream.start',
    schema: streamStartSchema,
    handle: async (p) => {
      const r = await push.start(p.grant, { dpop: p.dpop, command: { via: 'mqtt', op: 'stream.start' } });
      if (!r.ok) throw new LenscapError(r.code, `push refused: ${r.reason}`, { reason: r.reason });
      return { jti: r.jti, exp: r.exp, relay: r.relay };
    },
  });
  registry.register({ op: 'stream.stop', schema: streamStopSchema, handle: (p) => push.stop(p.jti) });
}
