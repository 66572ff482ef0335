/**
 * `cmd/events` through the real command dispatcher: a boolean turns events on/off and the reply is
 * the status; anything else is refused ERR_COMMAND_INVALID with a command_refused event and no call.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../agent/clock.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { CommandRegistry, createCommandDispatcher } from '../../agent/cloud/commands.ts';
import { registerEventsCommands } from '../../agent/events/commands.ts';
import type { EventsStatus } from '../../agent/events/service.ts';
import { silentLogger } from '../../agent/log.ts';

test('cmd/events: validated boolean in, status out; bad payloads refused before the service', async () => {
  const registry = new CommandRegistry();
  const calls: boolean[] = [];
  registerEventsCommands(registry, {
    setEnabled: (on) => {
      calls.push(on);
      return { enabled: on } as EventsStatus;
    },
  });
  const events = new MemoryEventSink();
  const d = createCommandDispatcher({
    registry,
    serial: 'CAM-1',
    maxBytes: 4096,
    logger: silentLogger(),
    events,
    clock: new ManualClock(0),
  });
  const buf = (v: unknown) => Buffer.from(JSON.stringify(v));
  assert.deepEqual(await d.dispatch('events', buf({ id: 'e1', enabled: true })), {
    id: 'e1',
    status: 'ok',
    data: { enabled: true },
  });
  for (const [i, bad] of [{}, { enabled: 'yes' }, { enabled: 1 }, { enabled: null }].entries()) {
    const r = await d.dispatch('events', buf({ id: `b${i}`, ...bad }));
    assert.equal(r?.status, 'error');
    assert.equal(r?.error?.code, 'ERR_COMMAND_INVALID');
  }
  assert.deepEqual(calls, [true]);
  assert.equal(events.events.filter((e) => e.type === 'command_refused').length, 4);
});
