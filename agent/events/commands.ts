/**
 * The cloud link's `events` op: `{id, enabled}` turns motion events on or off at once (the owner's
 * wish relayed by the cloud; config `events.enabled` is the value at start). The reply is the
 * events status (ring size, counters, last error), so the cloud sees why nothing was recorded.
 * Must never take anything but a boolean (zod, strict envelope), nor reach into the gate.
 */
import { z } from 'zod';
import { commandEnvelope, type CommandRegistry } from '../cloud/commands.ts';
import type { EventsStatus } from './service.ts';

export const eventsCommandSchema = commandEnvelope.extend({ enabled: z.boolean() });

export function registerEventsCommands(
  registry: CommandRegistry,
  events: { setEnabled(on: boolean, by?: string): EventsStatus },
): void {
  registry.register({
    op: 'events',
    schema: eventsCommandSchema,
    handle: (p) => events.setEnabled(p.enabled, 'cloud'),
  });
}
