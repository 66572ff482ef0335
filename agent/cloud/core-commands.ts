/**
 * The link's own ops: `ping`, `binding`, `trust`, `privacy`, `telemetry`. Each is a schema plus a
 * call into a service passed in (grants side, privacy switch, telemetry); this file decides nothing
 * about trust itself. Must never accept a binding or trust bundle without handing it to the verifier.
 */
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { CommandRegistry, commandEnvelope } from './commands.ts';

/** Compact JWS: three base64url parts. Size is bounded by cloud.commandMaxBytes before this. */
const compactJws = z
  .string()
  .min(5)
  .max(60000)
  .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a compact JWS');

export const pingSchema = commandEnvelope;
export const bindingSchema = commandEnvelope.extend({ record: compactJws });
export const trustSchema = commandEnvelope.extend({ bundle: compactJws });
export const privacySchema = commandEnvelope.extend({ enabled: z.boolean() });
export const telemetrySchema = commandEnvelope;

export interface CoreCommandDeps {
  clock: Clock;
  /** Grants side: verifies and stores a signed binding record; throws a LenscapError to refuse. */
  acceptBinding(jws: string): Promise<unknown> | unknown;
  /** Grants side: verifies and stores a signed trust bundle; throws a LenscapError to refuse. */
  acceptTrustBundle(jws: string): Promise<unknown> | unknown;
  /** Privacy mode on/off (refuses every grant while on). */
  setPrivacy(enabled: boolean): Promise<unknown> | unknown;
  /** Samples and publishes telemetry now; resolves with what was sent. */
  sendTelemetry(): Promise<unknown> | unknown;
  /** Seconds the agent has run (ping answers it). */
  uptimeSeconds?: () => number;
}

export function registerCoreCommands(registry: CommandRegistry, deps: CoreCommandDeps): void {
  registry.register({
    op: 'ping',
    schema: pingSchema,
    handle: () => ({
      pong: true,
      at: new Date(deps.clock.now()).toISOString(),
      ...(deps.uptimeSeconds ? { uptimeSeconds: deps.uptimeSeconds() } : {}),
    }),
  });
  registry.register({ op: 'binding', schema: bindingSchema, handle: (p) => deps.acceptBinding(p.record) });
  registry.register({ op: 'trust', schema: trustSchema, handle: (p) => deps.acceptTrustBundle(p.bundle) });
  registry.register({
    op: 'privacy',
    schema: privacySchema,
    handle: async (p) => {
      await deps.setPrivacy(p.enabled);
      return { enabled: p.enabled };
    },
  });
  registry.register({ op: 'telemetry', schema: telemetrySchema, handle: () => deps.sendTelemetry() });
}
