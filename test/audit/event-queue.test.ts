import test from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../../agent/clock.ts';
import { silentLogger } from '../../agent/log.ts';
import { EventQueue } from '../../agent/audit/event-queue.ts';
import type { SecurityEvent } from '../../agent/audit/events.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { reached } from '../../harness/wait.ts';

const ev = (n: number, pad = 0): SecurityEvent => ({
  type: 'grant_refused',
  at: '2026-01-01T00:00:00.000Z',
  serial: 'CAM-1',
  reason: 'expired',
  data: { n, ...(pad ? { pad: 'x'.repeat(pad) } : {}) },
});

function open(file: string, maxEvents = 10_000, maxBytes = 5 * 1024 * 1024) {
  return EventQueue.open({
    file,
    serial: 'CAM-1',
    maxEvents,
    maxBytes,
    clock: new ManualClock(1_700_000_000_000),
    logger: silentLogger(),
  });
}

const collector = () => {
  const out: Array<Record<string, unknown>> = [];
  return { out, publish: async (json: string) => void out.push(JSON.parse(json)) };
};

test('delivers in order, removes only acknowledged events, survives a restart', async (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'events', 'queue.jsonl');
  const q = open(file);
  for (let i = 0; i < 100; i++) q.emit(ev(i));
  // The broker acknowledges the first 50 and then the link drops.
  let acks = 0;
  await q.deliver(async () => {
    if (acks++ >= 50) throw new Error('offline');
  });
  assert.ok(q.size <= 50 && q.size >= 50 - 32, `acknowledged prefix removed (left ${q.size})`);
  const left = q.size;
  q.close();
  const q2 = open(file);
  assert.equal(q2.size, left, 'restart keeps the unacknowledged events');
  const c = collector();
  await q2.deliver(c.publish);
  assert.deepEqual(
    c.out.map((e) => (e.data as { n: number }).n),
    Array.from({ length: left }, (_, i) => 100 - left + i),
  );
  assert.equal(q2.size, 0);
  q2.close();
  assert.equal(open(file).size, 0, 'nothing comes back after all were acknowledged');
});

test('bounded by count: oldest dropped first, drop count reported first as events_dropped', async (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const q = open(join(tmp.dir, 'q.jsonl'), 100);
  for (let i = 0; i < 250; i++) q.emit(ev(i));
  assert.equal(q.size, 100);
  assert.equal(q.dropped, 150);
  q.close();
  const q2 = open(join(tmp.dir, 'q.jsonl'), 100);
  assert.equal(q2.dropped, 150, 'the drop counter survives a restart');
  const c = collector();
  await q2.deliver(c.publish);
  assert.equal(c.out[0]!.type, 'events_dropped');
  assert.equal((c.out[0]!.data as { count: number }).count, 150);
  assert.deepEqual(
    c.out.slice(1).map((e) => (e.data as { n: number }).n),
    Array.from({ length: 100 }, (_, i) => 150 + i),
  );
  assert.equal(q2.dropped, 0);
});

test('bounded by bytes: the file never exceeds maxBytes', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'q.jsonl');
  const maxBytes = 64 * 1024;
  const q = open(file, 10_000, maxBytes);
  for (let i = 0; i < 2000; i++) {
    q.emit(ev(i, 200));
    assert.ok(statSync(file).size <= maxBytes);
  }
  assert.ok(q.bytes <= maxBytes * 0.9);
  assert.ok(q.dropped > 1500);
  assert.equal(q.size + q.dropped, 2000, 'every event is either queued or counted as dropped');
});

test('a torn last line (power cut) is skipped and counted, the rest survives', async (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'q.jsonl');
  const q = open(file);
  for (let i = 0; i < 5; i++) q.emit(ev(i));
  q.close();
  appendFileSync(file, '{"s":6,"e":{"type":"gra');
  const q2 = open(file);
  assert.equal(q2.size, 5);
  assert.equal(q2.dropped, 1);
  assert.ok(!readFileSync(file, 'utf8').includes('"gra\n'), 'the torn tail is gone after reload');
});

test('events emitted while a delivery runs are delivered by it, still in order', async (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const q = open(join(tmp.dir, 'q.jsonl'));
  const out: number[] = [];
  let emitted = 0;
  q.onEnqueued(() => void q.deliver(publish));
  const publish = async (json: string) => {
    await new Promise((r) => setImmediate(r));
    out.push((JSON.parse(json).data as { n: number }).n);
    if (emitted < 20) q.emit(ev(emitted++));
  };
  q.emit(ev(emitted++));
  // Each ack is a file write: on a loaded machine this takes a while, so wait for the outcome
  // (bounded) rather than for a fixed time.
  await reached(() => out.length >= 20, 5000, { stepMs: 20 });
  assert.deepEqual(
    out,
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.equal(q.size, 0);
});

test('eviction order: junk goes first, then normal; critical events (the misroute alarm, trust) are never dropped for them; drops counted by type across a restart', async (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'q.jsonl');
  const q = open(file, 100);
  const alarm: SecurityEvent = {
    type: 'grant_refused',
    at: '2026-01-01T00:00:00.000Z',
    serial: 'CAM-1',
    reason: 'wrong_audience',
    claimedAud: 'CAM-2',
  };
  q.emit(alarm, 'critical');
  q.emit({ type: 'trust_updated', at: '2026-01-01T00:00:00.000Z', serial: 'CAM-1', data: { version: 2 } });
  q.emit({
    type: 'command_refused',
    at: '2026-01-01T00:00:00.000Z',
    serial: 'CAM-1',
    reason: 'ERR_COMMAND_BAD_OP',
  });
  for (let i = 0; i < 1000; i++) q.emit(ev(i), 'junk');
  assert.equal(q.size, 100);
  assert.equal(q.dropped, 903);
  assert.deepEqual(q.droppedByTypeSinceOpen, { grant_refused: 903 });
  q.close();
  // Restart: classes and the by-type drop count survive; normal events now push out junk, never the alarm.
  const q2 = open(file, 100);
  assert.equal(q2.dropped, 903);
  for (let i = 0; i < 150; i++)
    q2.emit({ type: 'privacy_changed', at: '2026-01-01T00:00:00.000Z', serial: 'CAM-1', data: { i } });
  const c = collector();
  await q2.deliver(c.publish);
  const report = c.out[0]!;
  assert.equal(report.type, 'events_dropped');
  const data = report.data as { count: number; byType: Record<string, number> };
  // 97 junk out first, then the oldest normal ones (command_refused, then privacy 0..52).
  assert.deepEqual(data.byType, { grant_refused: 1000, command_refused: 1, privacy_changed: 52 });
  assert.equal(data.count, 1053);
  const rest = c.out.slice(1);
  assert.equal(rest[0]!.reason, 'wrong_audience', 'the alarm survived, still first in line');
  assert.equal(rest[0]!.claimedAud, 'CAM-2');
  assert.equal(rest[1]!.type, 'trust_updated');
  assert.equal(rest.length, 100);
  assert.deepEqual(
    rest.slice(2).map((e) => (e.data as { i: number }).i),
    Array.from({ length: 98 }, (_, i) => 52 + i),
  );
});
