import test from 'node:test';
import assert from 'node:assert/strict';
import { nextUpload, planDrops, retryDelay, type QueuedView } from '../../agent/uploads/decide.ts';

const v = (
  id: string,
  kind: 'clip' | 'snapshot',
  size: number,
  queuedAt: number,
  nextAt = 0,
): QueuedView => ({
  id,
  kind,
  size,
  queuedAt,
  startedAt: queuedAt,
  nextAt,
});
const bounds = { maxBytes: 1000, maxCount: 10, minFreeBytes: 0 };

test('within every bound nothing is dropped', () => {
  assert.deepEqual(planDrops([v('a', 'clip', 500, 1), v('b', 'snapshot', 10, 2)], bounds, 1e9), []);
});

test('over bytes: the oldest clips go first, snapshots stay while a clip is left', () => {
  const entries = [
    v('s1', 'snapshot', 50, 1),
    v('c1', 'clip', 400, 2),
    v('s2', 'snapshot', 50, 3),
    v('c2', 'clip', 400, 4),
    v('c3', 'clip', 400, 5),
  ];
  assert.deepEqual(planDrops(entries, bounds, undefined), [{ id: 'c1', reason: 'bytes' }]);
  assert.deepEqual(planDrops(entries, { ...bounds, maxBytes: 500 }, undefined), [
    { id: 'c1', reason: 'bytes' },
    { id: 'c2', reason: 'bytes' },
  ]);
});

test('over count: clips first, then the oldest snapshots', () => {
  const entries = [
    v('s1', 'snapshot', 1, 1),
    v('s2', 'snapshot', 1, 2),
    v('c1', 'clip', 1, 3),
    v('s3', 'snapshot', 1, 4),
  ];
  assert.deepEqual(planDrops(entries, { ...bounds, maxCount: 2 }, undefined), [
    { id: 'c1', reason: 'count' },
    { id: 's1', reason: 'count' },
  ]);
});

test('free-space floor: dropping frees the artifact size; unknown free space applies no floor', () => {
  const entries = [v('c1', 'clip', 300, 1), v('c2', 'clip', 300, 2), v('s1', 'snapshot', 10, 0)];
  const b = { ...bounds, maxBytes: 1e9, minFreeBytes: 1000 };
  assert.deepEqual(planDrops(entries, b, 800), [{ id: 'c1', reason: 'free_space' }]);
  assert.deepEqual(planDrops(entries, b, 100), [
    { id: 'c1', reason: 'free_space' },
    { id: 'c2', reason: 'free_space' },
    { id: 's1', reason: 'free_space' },
  ]);
  assert.deepEqual(planDrops(entries, b, undefined), []);
});

test('the artifact being uploaded is never dropped; one larger than maxBytes is too_large', () => {
  const entries = [v('c1', 'clip', 600, 1), v('c2', 'clip', 600, 2), v('big', 'clip', 5000, 3)];
  assert.deepEqual(planDrops(entries, bounds, undefined, 'c1'), [
    { id: 'big', reason: 'too_large' },
    { id: 'c2', reason: 'bytes' },
  ]);
});

test('next: due snapshots before due clips, oldest first; else wait for the earliest retry', () => {
  const entries = [v('c0', 'clip', 1, 0), v('s2', 'snapshot', 1, 2), v('s1', 'snapshot', 1, 1, 500)];
  assert.deepEqual(nextUpload(entries, 100), { kind: 'upload', id: 's2' });
  assert.deepEqual(nextUpload([v('c', 'clip', 1, 0, 300), v('s', 'snapshot', 1, 0, 250)], 100), {
    kind: 'wait',
    ms: 150,
  });
  assert.deepEqual(nextUpload([], 100), { kind: 'idle' });
});

test("retry delay: full jitter over the cloud link's capped window, with a floor", () => {
  const o = { baseMs: 1000, capMs: 8000 };
  assert.equal(
    retryDelay(1, o, () => 0.999),
    999,
  );
  assert.equal(
    retryDelay(4, o, () => 0.999),
    7992,
  );
  assert.equal(
    retryDelay(30, o, () => 0.5),
    4000,
    'capped before jitter',
  );
  assert.equal(
    retryDelay(3, { ...o, floorMs: 50 }, () => 0),
    50,
  );
});
