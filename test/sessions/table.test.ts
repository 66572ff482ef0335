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
  assert.equal(table.closeByJti('b'), 2);
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
