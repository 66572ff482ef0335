/**
 * The upload queue on real files: ownership of the sealed file (deleted after upload or drop),
 * bounds and drop order with a counted event, offline/online, restart, idempotence, refusals.
 * The transfer is injected here (the real one runs against s3rver in transfer.test.ts).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../agent/clock.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { LenscapError, isLenscapError } from '../../agent/errors.ts';
import { silentLogger } from '../../agent/log.ts';
import type { SealedArtifact } from '../../agent/events/artifact.ts';
import { nodeUploadFs } from '../../agent/uploads/fs.ts';
import { UploadQueue, type Transfer, type UploadFs } from '../../agent/uploads/queue.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { writeArtifact } from './helpers.ts';
import { waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-Q1';

function setup(
  t: { after(fn: () => unknown): void },
  o: {
    transfer?: Transfer;
    online?: () => boolean;
    bounds?: Partial<{ maxBytes: number; maxCount: number; minFreeBytes: number }>;
    fs?: Partial<UploadFs>;
    dir?: string;
    /** Drive the queue's clock and timers by hand (retry and resume delays fire only on advance). */
    time?: TestClock;
  } = {},
) {
  const tmp = o.dir ? { dir: o.dir, cleanup: () => undefined } : makeTempDir('lenscap-uq-');
  const spool = join(tmp.dir, 'events', 'spool');
  const events = new MemoryEventSink();
  const sent: SealedArtifact[] = [];
  let online = true;
  const queue = UploadQueue.open({
    file: join(tmp.dir, 'events', 'uploads.json'),
    spoolDir: spool,
    serial: SERIAL,
    bounds: { maxBytes: 1 << 20, maxCount: 100, minFreeBytes: 0, ...o.bounds },
    retry: { baseMs: 5, capMs: 20 },
    clock: o.time ?? systemClock,
    random: Math.random,
    timers: o.time ?? systemClock,
    logger: silentLogger(),
    events,
    fs: { ...nodeUploadFs, ...o.fs },
    transfer:
      o.transfer ??
      (async (a) => {
        sent.push(a);
      }),
    isOnline: o.online ?? (() => online),
  });
  t.after(async () => {
    await queue.close();
    tmp.cleanup();
  });
  return { queue, spool, events, sent, dir: tmp.dir, setOnline: (v: boolean) => (online = v) };
}

test('an enqueued artifact is uploaded once and its sealed file deleted', async (t) => {
  const time = new TestClock();
  const s = setup(t, { time });
  const a = writeArtifact(s.spool, { serial: SERIAL, kind: 'snapshot', size: 100 });
  await s.queue.enqueue(a);
  await waitUntil(() => s.queue.status().uploaded === 1, 5000, 'upload');
  assert.deepEqual(
    s.sent.map((x) => x.id),
    [a.id],
  );
  assert.equal(existsSync(a.path), false, 'the queue deleted the sealed file after the upload');
  // Idempotent: the same id handed over again is not uploaded twice.
  await s.queue.enqueue(a);
  assert.equal(s.queue.status().queued, 0, 'not queued again');
  // Past every retry and resume delay: nothing uploads it a second time.
  await time.advance(60_000);
  assert.equal(s.sent.length, 1);
  assert.equal(s.queue.status().uploaded, 1);
});

test('offline: artifacts wait; after online() every one is uploaded, snapshots first', async (t) => {
  const time = new TestClock();
  const s = setup(t, { time });
  s.setOnline(false);
  const clip = writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 300 });
  const snap = writeArtifact(s.spool, { serial: SERIAL, kind: 'snapshot', size: 50 });
  await s.queue.enqueue(clip);
  await s.queue.enqueue(snap);
  await time.advance(60_000);
  assert.equal(s.sent.length, 0, 'nothing uploads while offline, however long');
  assert.equal(s.queue.status().queued, 2);
  s.setOnline(true);
  s.queue.online();
  await time.advance(20); // online() resumes after a jittered pause, at most the retry cap
  await waitUntil(() => s.queue.status().uploaded === 2, 5000, 'both uploads');
  assert.deepEqual(
    s.sent.map((x) => x.kind),
    ['snapshot', 'clip'],
  );
});

test('over the byte bound the oldest clips are dropped first, counted and reported; snapshots kept', async (t) => {
  const s = setup(t, { bounds: { maxBytes: 1000 } });
  s.setOnline(false);
  const arts = [
    writeArtifact(s.spool, { serial: SERIAL, kind: 'snapshot', size: 40 }),
    writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 400 }),
    writeArtifact(s.spool, { serial: SERIAL, kind: 'snapshot', size: 40 }),
    writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 400 }),
    writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 400 }),
  ];
  for (const a of arts) await s.queue.enqueue(a);
  const st = s.queue.status();
  assert.equal(st.queued, 4);
  assert.equal(st.dropped.clips, 1);
  assert.equal(st.dropped.snapshots, 0);
  assert.equal(st.dropped.byReason.bytes, 1);
  assert.equal(existsSync(arts[1]!.path), false, 'the dropped clip file is deleted');
  assert.ok(arts.filter((_, i) => i !== 1).every((a) => existsSync(a.path)));
  const ev = s.events.events.find((e) => e.type === 'artifacts_dropped');
  assert.ok(ev, 'an artifacts_dropped event');
  assert.equal(ev.reason, 'bytes');
  assert.deepEqual(ev.data?.ids, [arts[1]!.id]);
  assert.equal(ev.data?.clips, 1);
});

test('a full disk (free space under the floor) drops clips, keeps snapshots', async (t) => {
  let free = 10_000;
  const s = setup(t, { bounds: { minFreeBytes: 5000 }, fs: { freeBytes: () => free } });
  s.setOnline(false);
  const snap = writeArtifact(s.spool, { serial: SERIAL, kind: 'snapshot', size: 100 });
  const c1 = writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 2000 });
  const c2 = writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 2000 });
  await s.queue.enqueue(snap);
  await s.queue.enqueue(c1);
  free = 3500; // the disk filled (someone else's writes, or our clips)
  await s.queue.enqueue(c2);
  const st = s.queue.status();
  assert.deepEqual(s.queue.ids(), [snap.id, c2.id]);
  assert.equal(st.dropped.byReason.free_space, 1);
  free = 0;
  const c3 = writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 10 });
  await s.queue.enqueue(c3);
  assert.equal(s.queue.status().dropped.clips >= 2, true);
});

test('restart mid-queue: the index reloads and every queued artifact is uploaded after it', async (t) => {
  const tmp = makeTempDir('lenscap-uq-restart-');
  t.after(() => tmp.cleanup());
  const first = setup({ after: () => undefined }, { online: () => false, dir: tmp.dir });
  const arts = [
    writeArtifact(first.spool, { serial: SERIAL, kind: 'clip', size: 100 }),
    writeArtifact(first.spool, { serial: SERIAL, kind: 'snapshot', size: 10 }),
  ];
  for (const a of arts) await first.queue.enqueue(a);
  await first.queue.close();
  const index = JSON.parse(readFileSync(join(tmp.dir, 'events', 'uploads.json'), 'utf8'));
  assert.equal(index.entries.length, 2);
  const second = setup(t, { dir: tmp.dir });
  assert.deepEqual(second.queue.ids().sort(), arts.map((a) => a.id).sort());
  second.queue.online();
  await waitUntil(() => second.queue.status().uploaded === 2, 5000, 'uploads after restart');
  assert.ok(arts.every((a) => !existsSync(a.path)));
});

test('failures are retried with backoff, coded, redacted; the file stays until it is uploaded', async (t) => {
  let calls = 0;
  const s = setup(t, {
    transfer: async () => {
      calls++;
      if (calls < 3)
        throw new LenscapError(
          'ERR_UPLOAD_URL_HOST',
          'upload URL https://evil.example/x?X-Amz-Signature=deadbeefcafe is not on the upload host',
        );
    },
  });
  const a = writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 64 });
  await s.queue.enqueue(a);
  await waitUntil(() => calls >= 2, 5000, 'a retry');
  const le = s.queue.status().lastError;
  assert.equal(le?.code, 'ERR_UPLOAD_URL_HOST');
  assert.doesNotMatch(le?.message ?? '', /deadbeefcafe/);
  await waitUntil(() => s.queue.status().uploaded === 1, 5000, 'the upload after retries');
  assert.equal(calls, 3);
  assert.equal(existsSync(a.path), false);
});

test('a sealed file that no longer matches its record is dropped and counted', async (t) => {
  const s = setup(t, {
    transfer: async () => {
      throw new LenscapError('ERR_UPLOAD_FILE_MISMATCH', 'sha256 differs');
    },
  });
  const a = writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 64 });
  await s.queue.enqueue(a);
  await waitUntil(() => s.queue.status().dropped.total === 1, 5000, 'the drop');
  assert.equal(s.queue.status().dropped.byReason.file_mismatch, 1);
});

test('bad records are refused with a coded error and their file left alone', async (t) => {
  const s = setup(t, { online: () => false });
  const a = writeArtifact(s.spool, { serial: SERIAL, kind: 'clip', size: 64 });
  const cases: Array<[Partial<SealedArtifact> | Record<string, unknown>, string]> = [
    [{ sha256: 'XYZ' }, 'ERR_UPLOAD_ARTIFACT_INVALID'],
    [{ id: '../etc' }, 'ERR_UPLOAD_ARTIFACT_INVALID'],
    [{ serial: 'OTHER' }, 'ERR_UPLOAD_ARTIFACT_INVALID'],
    [{ path: '/etc/passwd' }, 'ERR_UPLOAD_ARTIFACT_INVALID'],
    [{ size: 65 }, 'ERR_UPLOAD_FILE_MISMATCH'],
    [{ extra: 1 }, 'ERR_UPLOAD_ARTIFACT_INVALID'],
  ];
  for (const [patch, code] of cases) {
    await assert.rejects(
      s.queue.enqueue({ ...a, ...patch } as SealedArtifact),
      (err) => isLenscapError(err) && err.code === code,
      JSON.stringify(patch),
    );
  }
  assert.equal(existsSync(a.path), true);
  assert.equal(existsSync('/etc/passwd'), true);
  assert.equal(s.queue.status().queued, 0);
});

test('an unreadable index starts empty instead of crashing', async (t) => {
  const tmp = makeTempDir('lenscap-uq-bad-');
  t.after(() => tmp.cleanup());
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(tmp.dir, 'events'), { recursive: true });
  writeFileSync(join(tmp.dir, 'events', 'uploads.json'), '{"v":1,"entries":[garbage');
  const s = setup(t, { dir: tmp.dir });
  assert.equal(s.queue.status().queued, 0);
});
