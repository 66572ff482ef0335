/**
 * The one session table's cut policy on the test clock: exp (a timer at exp, to the ms), privacy on
 * (`watchPrivacy`), stream.stop by jti, membership (`closeUnless`) and shutdown; each cut once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { TestClock } from '../../harness/test-clock.ts';
import { SessionTable, type CloseReason, type ViewerSession } from '../../agent/sessions/table.ts';

function session(table: SessionTable, id: number, jti: string, exp: number, cuts: string[]): ViewerSession {
  let closed = false;
  const s: ViewerSession = {
    id,
    kind: 'view',
    jti,
    sub: `viewer-${id}`,
    exp,
    remote: '127.0.0.1',
    transport: 'http',
    startedAt: 0,
    bytes: 0,
    close(reason: CloseReason) {
      if (closed) return;
      closed = true;
      cuts.push(`${id}:${reason}`);
      table.remove(id);
    },
  };
  table.add(s);
  return s;
}

test('exp, privacy, stream.stop, membership and shutdown each cut through the one table', async () => {
  const clock = new TestClock(1_000_000);
  const table = new SessionTable(clock);
  const cuts: string[] = [];
  const privacy = Object.assign(new EventEmitter(), { isOn: () => false });
  let heard = 0;
  const unwatch = table.watchPrivacy(privacy, (n) => (heard += n));
  session(table, 1, 'a', 1_010, cuts);
  session(table, 2, 'b', 2_000, cuts);
  session(table, 3, 'b', 2_000, cuts);
  await clock.advance(9_999);
  assert.deepEqual(cuts, []);
  await clock.advance(1);
  assert.deepEqual(cuts, ['1:expired']);
  assert.equal(table.closeByJti('b').length, 2);
  assert.deepEqual(cuts.slice(1), ['2:stream_stop', '3:stream_stop']);
  session(table, 4, 'c', 2_000, cuts);
  session(table, 5, 'd', 2_000, cuts);
  assert.equal(
    table.closeUnless((s) => s.sub !== 'viewer-4', 'not_a_member'),
    1,
  );
  privacy.emit('change', true);
  assert.deepEqual(cuts.slice(3), ['4:not_a_member', '5:privacy_mode']);
  assert.equal(heard, 1);
  unwatch();
  session(table, 6, 'e', 2_000, cuts);
  privacy.emit('change', true);
  assert.equal(table.size, 1, 'unwatched: privacy no longer reaches this table');
  assert.equal(table.closeAll('shutdown'), 1);
  assert.deepEqual(cuts.slice(5), ['6:shutdown']);
  table.stop();
  assert.equal(clock.timers, 0, 'no timer left behind');
});

test('viewers and pushes share the table: one call cuts both kinds, each kind ends alone at its stop', async () => {
  const clock = new TestClock(1_000_000);
  const table = new SessionTable(clock);
  const cuts: string[] = [];
  const add = (kind: 'view' | 'push', sub: string, jti: string) => {
    const id = table.newId();
    let closed = false;
    const close = (reason: CloseReason) => {
      if (closed) return;
      closed = true;
      cuts.push(`${kind}:${sub}:${reason}`);
      table.remove(id);
    };
    const base = { id, jti, sub, exp: 2_000, startedAt: 0, bytes: 0, close };
    table.add(
      kind === 'view'
        ? { ...base, kind, remote: '127.0.0.1', transport: 'http' }
        : { ...base, kind, relay: 'rtmp://relay.example/live/[redacted]' },
    );
  };
  add('view', 'alice', 'v1');
  add('push', 'alice', 'p1');
  add('view', 'bob', 'v2');
  add('push', 'bob', 'p2');
  assert.deepEqual([table.size, table.count('view'), table.count('push')], [4, 2, 2]);
  assert.equal(new Set(table.list().map((s) => s.id)).size, 4, 'ids unique across kinds');
  assert.equal(
    table.closeUnless((s) => s.sub !== 'alice', 'not_a_member'),
    2,
  );
  assert.deepEqual(cuts, ['view:alice:not_a_member', 'push:alice:not_a_member']);
  assert.deepEqual(
    table.closeByJti('p2').map((s) => s.kind),
    ['push'],
  );
  add('push', 'bob', 'p3');
  assert.equal(table.closeAll('shutdown', 'view'), 1, "the gate's stop ends viewers only");
  assert.deepEqual(
    table.list('push').map((s) => s.jti),
    ['p3'],
  );
  await clock.advance(1_000_000);
  assert.deepEqual(cuts.slice(-1), ['push:bob:expired'], 'exp cuts a push like a viewer');
  table.stop();
});
