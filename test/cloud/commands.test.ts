import test from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import fc from 'fast-check';
import { ManualClock } from '../../agent/clock.ts';
import { silentLogger } from '../../agent/log.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { CommandRegistry, commandEnvelope, createCommandDispatcher } from '../../agent/cloud/commands.ts';
import { registerCoreCommands } from '../../agent/cloud/core-commands.ts';
import { classifyIncoming, topicsFor } from '../../agent/cloud/topics.ts';

function setup(maxBytes = 65536) {
  const registry = new CommandRegistry();
  const calls: string[] = [];
  const clock = new ManualClock(1_700_000_000_000);
  registerCoreCommands(registry, {
    clock,
    acceptBinding: (jws) => void calls.push(`binding:${jws}`),
    acceptTrustBundle: (jws) => void calls.push(`trust:${jws}`),
    setPrivacy: (on) => void calls.push(`privacy:${on}`),
    sendTelemetry: () => ({ sent: true }),
  });
  const events = new MemoryEventSink();
  const d = createCommandDispatcher({
    registry,
    serial: 'CAM-1',
    maxBytes,
    logger: silentLogger(),
    events,
    clock,
  });
  return { registry, d, calls, events };
}
const buf = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

test('valid commands reach their handler; replies carry id and status', async () => {
  const { d, calls } = setup();
  assert.deepEqual(await d.dispatch('privacy', buf({ id: 'a1', enabled: true })), {
    id: 'a1',
    status: 'ok',
    data: { enabled: true },
  });
  assert.equal((await d.dispatch('ping', buf({ id: 'a2' })))?.status, 'ok');
  assert.equal((await d.dispatch('binding', buf({ id: 'a3', record: 'aa.bb.cc' })))?.status, 'ok');
  assert.deepEqual(calls, ['privacy:true', 'binding:aa.bb.cc']);
});

test('each refusal has a code, a reply, and a command_refused event', async () => {
  const { d, events, calls } = setup(1024);
  const cases: Array<[string, Buffer, string, string | null]> = [
    ['ping', Buffer.alloc(2000, 0x20), 'ERR_COMMAND_TOO_LARGE', null],
    ['ping', buf('{nope'), 'ERR_COMMAND_BAD_JSON', null],
    ['ping', buf('[1]'), 'ERR_COMMAND_BAD_JSON', null],
    ['ping', buf({ noid: 1 }), 'ERR_COMMAND_INVALID', null],
    ['launch', buf({ id: 'x1' }), 'ERR_COMMAND_UNKNOWN_OP', 'x1'],
    ['privacy', buf({ id: 'x2' }), 'ERR_COMMAND_INVALID', 'x2'],
    ['privacy', buf({ id: 'x3', enabled: 'yes' }), 'ERR_COMMAND_INVALID', 'x3'],
    ['binding', buf({ id: 'x4', record: 'not a jws' }), 'ERR_COMMAND_INVALID', 'x4'],
  ];
  for (const [op, payload, code, id] of cases) {
    const r = await d.dispatch(op, payload);
    assert.equal(r?.status, 'error', code);
    assert.equal(r?.error?.code, code);
    assert.equal(r?.id, id);
  }
  assert.deepEqual(calls, []);
  assert.equal(events.events.length, cases.length);
  assert.ok(
    events.events.every(
      (e) => e.type === 'command_refused' && e.serial === 'CAM-1' && typeof e.reason === 'string',
    ),
  );
});

test('a handler error becomes an error reply with its code; an unexpected throw a generic one', async () => {
  const registry = new CommandRegistry();
  const { LenscapError } = await import('../../agent/errors.ts');
  registry.register({
    op: 'a',
    schema: commandEnvelope,
    handle: () => {
      throw new LenscapError('ERR_BINDING_ROLLBACK', 'older version');
    },
  });
  registry.register({
    op: 'b',
    schema: commandEnvelope,
    handle: () => {
      throw new TypeError('secret detail');
    },
  });
  const d = createCommandDispatcher({
    registry,
    serial: 'S',
    maxBytes: 100,
    logger: silentLogger(),
    events: new MemoryEventSink(),
    clock: new ManualClock(0),
  });
  assert.equal((await d.dispatch('a', buf({ id: '1' })))?.error?.code, 'ERR_BINDING_ROLLBACK');
  const r = await d.dispatch('b', buf({ id: '2' }));
  assert.equal(r?.error?.code, 'ERR_COMMAND_FAILED');
  assert.ok(!r?.error?.message.includes('secret'));
});

test('duplicate ids do not act twice (QoS 1 redelivery) and get the first reply', async () => {
  const { d, calls } = setup();
  const first = await d.dispatch('privacy', buf({ id: 'dup', enabled: true }));
  const again = await d.dispatch('privacy', buf({ id: 'dup', enabled: false }));
  assert.deepEqual(again, first);
  assert.deepEqual(calls, ['privacy:true']);
  assert.equal(d.counters().duplicates, 1);
});

test('registry: ops are named, unique; other services add their own', () => {
  const r = new CommandRegistry();
  r.register({
    op: 'stream.start',
    schema: commandEnvelope.extend({ grant: z.string() }),
    handle: () => undefined,
  });
  assert.throws(() => r.register({ op: 'stream.start', schema: commandEnvelope, handle: () => undefined }), {
    code: 'ERR_COMMAND_DUPLICATE_OP',
  });
  assert.throws(() => r.register({ op: 'a/b', schema: commandEnvelope, handle: () => undefined }), {
    code: 'ERR_COMMAND_OP_NAME',
  });
  assert.deepEqual(r.ops(), ['stream.start']);
});

test('property: no payload crashes the dispatcher, and only schema-valid ones reach a handler', async () => {
  const { d, calls } = setup(4096);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('ping', 'binding', 'trust', 'privacy', 'telemetry', 'x', 'stream.start'),
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        fc.json().map((j) => Buffer.from(j)),
        fc.object().map((o) => buf(o)),
      ),
      async (op, payload) => {
        const before = calls.length;
        const r = await d.dispatch(op, payload);
        assert.ok(r === undefined || r.status === 'ok' || r.status === 'error');
        if (calls.length > before) assert.equal(r?.status, 'ok');
      },
    ),
    { numRuns: 500 },
  );
});

test('topics: everything under lenscap/v1/<serial>/, nothing else is acted on', () => {
  const t = topicsFor('CAM-1');
  assert.equal(t.state, 'lenscap/v1/CAM-1/state');
  assert.equal(t.commandFilter, 'lenscap/v1/CAM-1/cmd/+');
  assert.equal(t.reply('stream.start'), 'lenscap/v1/CAM-1/reply/stream.start');
  assert.throws(() => t.reply('a/#'), { code: 'ERR_CLOUD_TOPIC' });
  assert.throws(() => topicsFor('CAM/+'), { code: 'ERR_CLOUD_SERIAL' });
  assert.throws(() => topicsFor('#'), { code: 'ERR_CLOUD_SERIAL' });
  assert.deepEqual(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/ping'), { kind: 'command', op: 'ping' });
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-2/cmd/ping').kind, 'foreign');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-10/cmd/ping').kind, 'foreign');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/a/b').kind, 'foreign');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/state').kind, 'foreign');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/Ping').kind, 'bad_op');
  assert.ok(t.owns('lenscap/v1/CAM-1/events'));
  assert.ok(!t.owns('lenscap/v1/CAM-10/events'));
  assert.ok(!t.owns('lenscap/v1/CAM-1/'));
  assert.ok(!t.owns('lenscap/v1/CAM-1/#'));
});

test('a foreign topic is dropped and reported', () => {
  const { d, events } = setup();
  d.refuseTopic('lenscap/v1/CAM-2/cmd/ping', 'foreign_topic');
  assert.equal(events.events[0]?.reason, 'ERR_COMMAND_FOREIGN_TOPIC');
  assert.equal(d.counters().refused, 1);
});
