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

test('an id reused for another op is refused with a code, never answered with the old reply', async () => {
  const { d, calls, events } = setup();
  assert.equal((await d.dispatch('ping', buf({ id: 'X' })))?.status, 'ok');
  const reused = await d.dispatch('privacy', buf({ id: 'X', enabled: true }));
  assert.equal(reused?.status, 'error', JSON.stringify(reused));
  assert.equal(reused?.error?.code, 'ERR_COMMAND_ID_REUSED');
  assert.equal(reused?.id, 'X');
  assert.deepEqual(calls, [], 'privacy never ran, and was not reported as done');
  assert.equal(events.events.at(-1)?.reason, 'ERR_COMMAND_ID_REUSED');
  // The first op's redelivery still gets its first reply; a fresh id for privacy acts.
  assert.equal((await d.dispatch('ping', buf({ id: 'X' })))?.status, 'ok');
  assert.equal((await d.dispatch('privacy', buf({ id: 'Y', enabled: true })))?.status, 'ok');
  assert.deepEqual(calls, ['privacy:true']);
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

/**
 * An oracle written apart from the zod schemas: what each op must accept. If the dispatcher stopped
 * validating (or validated differently), the property below fails.
 */
const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const JWS_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
function oracle(op: string, payload: Buffer): { valid: boolean; id: string | null } {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return { valid: false, id: null };
  }
  if (payload.length > 4096 || body === null || typeof body !== 'object' || Array.isArray(body))
    return { valid: false, id: null };
  const o = body as Record<string, unknown>;
  const id = typeof o.id === 'string' && ID_RE.test(o.id) ? o.id : null;
  if (id === null) return { valid: false, id };
  const jws = (v: unknown) => typeof v === 'string' && v.length >= 5 && v.length <= 60000 && JWS_RE.test(v);
  const valid =
    op === 'ping' || op === 'telemetry'
      ? true
      : op === 'privacy'
        ? typeof o.enabled === 'boolean'
        : op === 'binding'
          ? jws(o.record)
          : op === 'trust'
            ? jws(o.bundle)
            : false;
  return { valid, id };
}

test('property: exactly the schema-valid payloads reach a handler, once, and get ok; the rest a coded error', async () => {
  const field = fc.oneof(
    fc.boolean(),
    fc.string({ maxLength: 12 }),
    fc.constantFrom('aa.bb.cc', 'a.b', 'x.y.z!', 'AAAA.BBBB.CCCC'),
    fc.integer(),
    fc.constant(null),
  );
  // Mostly near-valid envelopes (so both branches are exercised), plus raw bytes and arbitrary JSON.
  const nearValid = fc
    .record(
      {
        id: fc.oneof(
          { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/) },
          { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
          { weight: 1, arbitrary: fc.integer() },
        ),
        enabled: field,
        record: field,
        bundle: field,
      },
      { requiredKeys: ['id'] },
    )
    .map((o) => buf(o));
  let validSeen = 0;
  let invalidSeen = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('ping', 'binding', 'trust', 'privacy', 'telemetry', 'x', 'stream.start'),
      fc.oneof(
        { weight: 4, arbitrary: nearValid },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
        { weight: 1, arbitrary: fc.json().map((j) => Buffer.from(j)) },
        { weight: 1, arbitrary: fc.object().map((o) => buf(o)) },
      ),
      async (op, payload) => {
        // A fresh dispatcher per case: no id was seen before, so a valid payload must act.
        const { d, calls } = setup(4096);
        const want = oracle(op, payload);
        const r = await d.dispatch(op, payload);
        assert.ok(r, 'a fresh id always gets a reply');
        const acted = calls.length + d.counters().handled;
        if (want.valid) {
          validSeen++;
          assert.equal(r.status, 'ok', `valid ${op} ${payload.toString()} -> ${JSON.stringify(r)}`);
          assert.equal(r.id, want.id);
          assert.equal(d.counters().handled, 1);
          assert.ok(acted >= 1);
        } else {
          invalidSeen++;
          assert.equal(r.status, 'error', `invalid ${op} ${payload.toString()} -> ${JSON.stringify(r)}`);
          assert.match(r.error?.code ?? '', /^ERR_COMMAND_[A-Z_]+$/);
          assert.equal(r.id, want.id);
          assert.equal(acted, 0, 'no handler ran');
        }
      },
    ),
    { numRuns: 500 },
  );
  assert.ok(validSeen > 50 && invalidSeen > 50, `both branches exercised (${validSeen}/${invalidSeen})`);
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

test('topics where the broker splits levels on "." (RabbitMQ): cmd/# and dotted ops read back', () => {
  const t = topicsFor('CAM-1', { dotsSplitLevels: true });
  assert.equal(t.commandFilter, 'lenscap/v1/CAM-1/cmd/#');
  // RabbitMQ delivers `cmd/claim.nonce` as `cmd/claim/nonce` (routing key lenscap.v1.CAM-1.cmd.claim.nonce)
  assert.deepEqual(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/claim/nonce'), {
    kind: 'command',
    op: 'claim.nonce',
  });
  assert.deepEqual(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/ping'), { kind: 'command', op: 'ping' });
  assert.deepEqual(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/stream.start'), {
    kind: 'command',
    op: 'stream.start',
  });
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/a//b').kind, 'bad_op');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/a/').kind, 'bad_op');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/').kind, 'bad_op');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/cmd/A/b').kind, 'bad_op');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-2/cmd/claim/nonce').kind, 'foreign');
  assert.equal(classifyIncoming(t, 'lenscap/v1/CAM-1/reply/claim/nonce').kind, 'foreign');
  // a serial with a dot would be two levels there, under serial `CAM`'s prefix: refused, coded
  assert.throws(() => topicsFor('CAM.1', { dotsSplitLevels: true }), { code: 'ERR_CLOUD_SERIAL' });
  assert.equal(topicsFor('CAM.1').commandFilter, 'lenscap/v1/CAM.1/cmd/+');
});

test('a foreign topic is dropped and reported', () => {
  const { d, events } = setup();
  d.refuseTopic('lenscap/v1/CAM-2/cmd/ping', 'foreign_topic');
  assert.equal(events.events[0]?.reason, 'ERR_COMMAND_FOREIGN_TOPIC');
  assert.equal(d.counters().refused, 1);
});

test('a command with a duplicate key is refused before any handler runs (the last one does not win)', async () => {
  const { d, calls } = setup();
  const r = await d.dispatch('privacy', Buffer.from('{"id":"dk-1","enabled":false,"enabled":true}'));
  assert.equal(r?.status, 'error', JSON.stringify(r));
  assert.equal(r?.error?.code, 'ERR_COMMAND_BAD_JSON');
  const r2 = await d.dispatch('privacy', Buffer.from('{"id":"dk-2","\\u0069d":"dk-3","enabled":true}'));
  assert.equal(r2?.error?.code, 'ERR_COMMAND_BAD_JSON');
  assert.deepEqual(calls, []);
});
