/**
 * The upload service schedules on the agent's one time seam: a URL request that gets no answer
 * times out when the injected clock says so (not after a real minute), and the retry waits on the
 * same clock. No network: the cloud link is a stand-in that accepts requests and never answers.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { createLogger, silentLogger } from '../../agent/log.ts';
import { Writable } from 'node:stream';
import { createUploadService } from '../../agent/uploads/service.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { writeArtifact } from './helpers.ts';
import { waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-TIME-1';

test('upload URL timeout and retry run on the injected clock', { timeout: 20_000 }, async (t) => {
  const tmp = makeTempDir();
  const clock = new TestClock();
  const requests: string[] = [];
  const uploads = createUploadService({
    config: {
      uploads: configSchema.shape.uploads.parse({
        host: 'objects.example.test',
        urlTimeoutMs: 60_000,
        retry: { baseMs: 30_000, capMs: 30_000 },
      }),
    },
    indexFile: join(tmp.dir, 'uploads.json'),
    spoolDir: join(tmp.dir, 'spool'),
    serial: SERIAL,
    clock,
    random: () => 0.5,
    logger: silentLogger(),
    events: new MemoryEventSink(),
    link: () =>
      ({
        isOnline: () => true,
        publishData: async (_topic: unknown, payload: unknown) => {
          requests.push(JSON.stringify(payload));
        },
        on: () => undefined,
        off: () => undefined,
      }) as never,
  });
  t.after(async () => {
    await uploads.stop();
    tmp.cleanup();
  });
  uploads.start();
  await uploads.sink.enqueue(
    writeArtifact(join(tmp.dir, 'spool'), { serial: SERIAL, kind: 'snapshot', size: 500 }),
  );
  await waitUntil(() => requests.length === 1, 5000, 'the first URL request');
  assert.equal(uploads.status().lastError, undefined, 'nothing fails before the clock moves');

  await clock.advance(60_000);
  await waitUntil(
    () => uploads.status().lastError?.code === 'ERR_UPLOAD_URL_TIMEOUT',
    5000,
    'the URL timeout',
  );
  assert.equal(requests.length, 1, 'no retry before its delay');
  assert.equal(uploads.status().queued, 1, 'the artifact stays queued');

  await clock.advance(30_000);
  await waitUntil(() => requests.length === 2, 5000, 'the retry, on the same clock');
});

test(
  'without uploads.host the queue waits (said once) instead of retrying every backoff',
  { timeout: 20_000 },
  async (t) => {
    const tmp = makeTempDir();
    const clock = new TestClock();
    const lines: Array<{ code?: string; msg?: string }> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const uploads = createUploadService({
      config: { uploads: configSchema.shape.uploads.parse({ retry: { baseMs: 1_000, capMs: 5_000 } }) },
      indexFile: join(tmp.dir, 'uploads.json'),
      spoolDir: join(tmp.dir, 'spool'),
      serial: SERIAL,
      clock,
      random: () => 0.5,
      logger: createLogger({ destination }),
      events: new MemoryEventSink(),
      link: () =>
        ({
          isOnline: () => true,
          publishData: async () => undefined,
          on: () => undefined,
          off: () => undefined,
        }) as never,
    });
    t.after(async () => {
      await uploads.stop();
      tmp.cleanup();
    });
    uploads.start();
    await uploads.sink.enqueue(
      writeArtifact(join(tmp.dir, 'spool'), { serial: SERIAL, kind: 'snapshot', size: 500 }),
    );
    for (let i = 0; i < 12; i++) await clock.advance(5_000);
    // Let pino's writes and the queue's loop settle on the real event loop (bounded).
    await waitUntil(() => lines.some((l) => l.code === 'ERR_UPLOAD_NOT_CONFIGURED'), 5000, 'the one warning');
    await new Promise((r) => setImmediate(r));
    const said = lines.filter((l) => l.code === 'ERR_UPLOAD_NOT_CONFIGURED');
    assert.equal(
      said.length,
      1,
      `said ${said.length} times in a minute: ${JSON.stringify(said.slice(0, 3))}`,
    );
    assert.equal(uploads.status().queued, 1, 'the artifact stays queued for when the host is configured');
    assert.equal(uploads.status().dropped.total, 0);
  },
);
