/**
 * ERR_UPLOAD_INDEX_IO: an upload index that cannot be written (here its path is taken by a
 * directory, which fails the rename the same way for root and for an unprivileged agent) is logged
 * with the code, kept in memory, and nothing is lost: every artifact stays queued and is uploaded;
 * once the path is writable again the next change writes the whole index, and close() writes one
 * still pending, so a restart resumes with every artifact.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { systemClock } from '../../agent/clock.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import type { SealedArtifact } from '../../agent/events/artifact.ts';
import { createLogger } from '../../agent/log.ts';
import { nodeUploadFs } from '../../agent/uploads/fs.ts';
import { UploadQueue } from '../../agent/uploads/queue.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { writeArtifact } from './helpers.ts';
import { waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-IDX-1';

function open(
  dir: string,
  lines: Array<Record<string, unknown>>,
  online: () => boolean,
  sent: SealedArtifact[],
) {
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return UploadQueue.open({
    file: join(dir, 'events', 'uploads.json'),
    spoolDir: join(dir, 'events', 'spool'),
    serial: SERIAL,
    bounds: { maxBytes: 1 << 20, maxCount: 100, minFreeBytes: 0 },
    retry: { baseMs: 5, capMs: 20 },
    clock: systemClock,
    random: Math.random,
    timers: systemClock,
    logger: createLogger({ destination }),
    events: new MemoryEventSink(),
    fs: nodeUploadFs,
    transfer: async (a) => {
      sent.push(a);
    },
    isOnline: online,
  });
}

test('ERR_UPLOAD_INDEX_IO: an unwritable index is logged, kept in memory, written later; nothing lost', async (t) => {
  const tmp = makeTempDir('lenscap-uq-indexio-');
  t.after(() => tmp.cleanup());
  const index = join(tmp.dir, 'events', 'uploads.json');
  // The index's path is a directory: every crash-safe replace (temp file, rename) fails.
  mkdirSync(index, { recursive: true });
  const lines: Array<Record<string, unknown>> = [];
  const sent: SealedArtifact[] = [];
  let online = false;
  const q = open(tmp.dir, lines, () => online, sent);
  const spool = join(tmp.dir, 'events', 'spool');
  const clip = writeArtifact(spool, { serial: SERIAL, kind: 'clip', size: 300 });
  const snap = writeArtifact(spool, { serial: SERIAL, kind: 'snapshot', size: 40 });
  await q.enqueue(clip);
  await q.enqueue(snap);
  const coded = lines.filter((l) => l.code === 'ERR_UPLOAD_INDEX_IO');
  assert.ok(coded.length >= 2, `every failed write is logged with the code (${coded.length})`);
  assert.equal(typeof coded[0]!.err, 'string');
  assert.equal(q.status().queued, 2, 'both artifacts stay queued in memory');
  assert.ok(statSync(index).isDirectory(), 'no index was written');
  assert.ok(existsSync(clip.path) && existsSync(snap.path), 'the sealed files are kept');

  // The disk recovers: the next change writes the whole index (both artifacts in it).
  rmdirSync(index);
  const later = writeArtifact(spool, { serial: SERIAL, kind: 'snapshot', size: 10 });
  await q.enqueue(later);
  const written = JSON.parse(readFileSync(index, 'utf8')) as { entries: Array<{ artifact: { id: string } }> };
  assert.deepEqual(written.entries.map((e) => e.artifact.id).sort(), [clip.id, snap.id, later.id].sort());

  // And everything is uploaded once the link is up.
  online = true;
  q.online();
  await waitUntil(() => q.status().uploaded === 3, 5000, 'every artifact uploaded');
  assert.deepEqual(sent.map((a) => a.id).sort(), [clip.id, snap.id, later.id].sort());
  await q.close();
});

test('ERR_UPLOAD_INDEX_IO at close: an index still pending is written then, and a restart resumes', async (t) => {
  const tmp = makeTempDir('lenscap-uq-indexio-close-');
  t.after(() => tmp.cleanup());
  const index = join(tmp.dir, 'events', 'uploads.json');
  mkdirSync(index, { recursive: true });
  const lines: Array<Record<string, unknown>> = [];
  const q = open(tmp.dir, lines, () => false, []);
  const clip = writeArtifact(join(tmp.dir, 'events', 'spool'), { serial: SERIAL, kind: 'clip', size: 100 });
  await q.enqueue(clip);
  assert.ok(lines.some((l) => l.code === 'ERR_UPLOAD_INDEX_IO'));
  rmdirSync(index);
  await q.close();
  const sent: SealedArtifact[] = [];
  const again = open(tmp.dir, [], () => true, sent);
  assert.deepEqual(again.ids(), [clip.id], 'the restart found the artifact in the index written at close');
  again.online();
  await waitUntil(() => again.status().uploaded === 1, 5000, 'uploaded after the restart');
  await again.close();
});
