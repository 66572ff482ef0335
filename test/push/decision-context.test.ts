/**
 * Push's side of a grant decision is typed like the gate's: the grant gate (and every refusal push
 * reports itself) gets `command: {via, op}` next to the printed `source` it derives
 * (`commandSource`), never a bare string to parse. No program, no socket: a recording grant gate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPushService } from '../../agent/push/push.ts';
import { silentLogger } from '../../agent/log.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { noViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import type { DecisionContext } from '../../agent/grants/types.ts';

test('stream.start decides with a typed command origin; refusals push reports carry it too', async () => {
  const decided: DecisionContext[] = [];
  const reported: { reason: string; ctx: DecisionContext }[] = [];
  const clock = new TestClock(1_000_000);
  const push = createPushService({
    serial: 'CAM-0001',
    grants: {
      decide: async (_token, ctx) => {
        decided.push(ctx);
        // Accepted, but with no key for the viewer: push itself refuses and reports.
        return {
          ok: true,
          claims: {
            iss: 'dev',
            aud: 'CAM-0001',
            sub: 'alice',
            jti: 'j1',
            iat: 1000,
            exp: 1300,
            scope: 'live',
            relay: 'rtmp://relay.example/live/CAM-0001',
          },
        };
      },
      reportRefusal: (reason, ctx) => void reported.push({ reason, ctx }),
    },
    stream: { acquire: () => () => undefined, attach: () => () => undefined },
    relayAllowList: [],
    clock,
    logger: silentLogger(),
    viewerKeys: noViewerKeys,
  });
  try {
    const r = await push.start('token', { dpop: 'proof' });
    assert.deepEqual([r.ok, !r.ok && r.reason], [false, 'viewer_key_missing']);
    const expected: DecisionContext = {
      source: 'mqtt:stream.start',
      command: { via: 'mqtt', op: 'stream.start' },
      purpose: 'push',
      proof: { dpop: 'proof', htm: 'PUSH', htu: 'urn:lenscap:push:CAM-0001' },
    };
    assert.deepEqual(decided, [expected]);
    assert.deepEqual(reported, [{ reason: 'viewer_key_missing', ctx: expected }]);
    assert.equal(push.active().length, 0);
  } finally {
    await push.close();
  }
  assert.equal(clock.timers, 0, "push's own table left no timer behind");
});
