/**
 * The cloud link's `events` op: `{id, enabled}` turns motion events on or off at once (the owner's
 * wish relayed by the cloud) and saves the switch (switch.ts) so it holds across a restart; config
 * `events.enabled` is only the default. The reply is the events status (ring size, counters, last
 * error), so the cloud sees why nothing was recorded; a switch applied but not saved answers
 * ERR_EVENTS_COMMAND.
 * Must never take anything but a boolean (zod, strict envelope), save before applying (an "off"
 * takes effect even when the disk fails), nor reach into the gate.
 */
import { z } from 'zod';
import { commandEnvelope, type CommandRegistry } from '../cloud/commands.ts';
import type { Clock } from '../clock.ts';
import type { EventsStatus } from './service.ts';
import type { EventsSwitch } from './switch.ts';

export const eventsCommandSchema = commandEnvelope.extend({ enabled: z.boolean() });

export function registerEventsCommands(
  registry: CommandRegistry,
  events: { setEnabled(on: boolean, by?: string): EventsStatus },
  saved?: { switch: Pick<EventsSwitch, 'save'>; clock: Pick<Clock, 'now'> },
): void {
  registry.register({
    op: 'events',
    schema: eventsCommandSchema,
    handle: (p) => {
      // Applied first: turning events off must not wait for (or depend on) the disk.
      const status = events.setEnabled(p.enabled, 'cloud');
      saved?.switch.save(p.enabled, 'cloud', new Date(saved.clock.now()));
      return status;
    },
  });
}
