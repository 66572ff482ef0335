/**
 * Capture's ffmpeg writes FLV to its stdout and the hub ingests it in process (issue 18, cold
 * start): real ffmpeg (testpattern), the real stream service and hub. The first keyframe reaches an
 * in-process tap; an ffmpeg crash is resumed within the grace window with the timeline continuing;
 * a deliberate stop leaves no stale GOP for the next viewer; bytes that are not FLV — on the pipe
 * of a real capture run, or handed to the ingest directly — are a coded ERR_HUB_INGEST, never a
 * crash, nothing of them reaches a tap, and the supervisor restarts capture.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { FlvTagReader, type FlvTagOut } from '../../agent/sealing/flv-tags.ts';
import { createStreamService, type StreamService } from '../../agent/stream/service.ts';
import { CaptureSupervisor } from '../../agent/stream/supervisor.ts';
import type { IngestFailure } from '../../agent/stream/hub-ingest.ts';
import { createTestPatternDriver } from '../../drivers/camera/testpattern.ts';
import { onceWithin, waitUntil } from '../../harness/wait.ts';

const { config } = loadConfig(undefined, {});
const camera = { ...config.camera, width: 320, height: 180, fps: 15, gopSeconds: 1 };
let s: StreamService;

before(async () => {
  const privacy = Object.assign(new EventEmitter(), { isOn: () => false });
  s = createStreamService({
    serial: 'CAM-0001',
    stream: { ...config.stream, mode: 'on-demand', idleStopSeconds: 0 },
    camera,
    logger: silentLogger(),
    privacy,
    cameraDriver: createTestPatternDriver({ hasDrawtext: false }),
    backoff: { initialMs: 100, maxMs: 400 },
  });
  await s.start();
});
after(async () => {
  await s?.stop();
});

/** An in-process tap that parses what the hub hands it. */
function tap() {
  const chunks: Buffer[] = [];
  let header: Buffer | undefined;
  const tags: FlvTagOut[] = [];
  const reader = new FlvTagReader(
    (h) => (header = h),
    (t) => tags.push(t),
  );
  const detach = s.attach({
    write: (c) => {
      chunks.push(Buffer.from(c));
      reader.push(Buffer.from(c));
    },
    end: () => undefined,
  });
  return { chunks, tags, header: () => header, detach, bytes: () => Buffer.concat(chunks) };
}

const isKeyframe = (t: FlvTagOut) => t.type === 9 && t.body[0] === 0x17 && t.body[1] === 1;
const tsOf = (t: FlvTagOut) => ((t.ts[3]! << 24) | (t.ts[0]! << 16) | (t.ts[1]! << 8) | t.ts[2]!) >>> 0;

test('the first keyframe reaches an in-process tap straight from the capture pipe (video-only header first)', async () => {
  const t = tap();
  const t0 = performance.now();
  const release = s.acquire();
  try {
    await waitUntil(() => t.tags.some(isKeyframe), 15_000, 'a keyframe at the tap');
    const ms = performance.now() - t0;
    assert.ok(s.hub.isLive(), 'the hub is live');
    const h = t.header();
    assert.ok(h, 'FLV header first');
    assert.equal(h.toString('latin1', 0, 3), 'FLV');
    assert.equal(h[4]! & 0x05, 0x01, 'video only: the audio flag is cleared');
    const seq = t.tags.find((x) => x.type === 9 && x.body[1] === 0);
    assert.ok(seq, 'the AVC sequence header came before the keyframe');
    assert.ok(t.tags.indexOf(seq) < t.tags.findIndex(isKeyframe));
    assert.equal(s.hub.counters.ingestFailures, 0);
    // Not a benchmark (bench/stream.ts is); a bound that catches a hop creeping back in.
    assert.ok(ms < 10_000, `first keyframe after ${ms.toFixed(0)} ms`);
  } finally {
    t.detach();
    release();
  }
  await waitUntil(() => !s.status().capture.running && !s.hub.isLive(), 10_000, 'capture stopped');
});

test('ffmpeg killed mid-stream: the next run resumes the publish and the timeline continues', async () => {
  const release = s.acquire();
  const t = tap();
  try {
    await waitUntil(() => t.tags.filter(isKeyframe).length >= 2, 15_000, 'two keyframes');
    const pid = s.capturePid();
    assert.ok(pid);
    const runs = s.hub.counters.runs;
    const restarted = onceWithin<number>(s.supervisorEvents, 'started', 15_000, 'capture restarted');
    process.kill(pid, 'SIGKILL');
    const failed = await onceWithin<{ code: string }>(s.supervisorEvents, 'failed', 15_000, 'failure');
    assert.equal(failed.code, 'ERR_CAPTURE_EXITED');
    const lastBefore = Math.max(...t.tags.filter((x) => x.type === 9).map(tsOf));
    const n = t.tags.length;
    await restarted;
    await waitUntil(() => t.tags.slice(n).some(isKeyframe), 15_000, 'a keyframe from the new run');
    assert.equal(s.hub.counters.runs, runs + 1);
    const after = t.tags.slice(n).filter((x) => x.type === 9 && x.body[1] === 1);
    assert.ok(after.length > 0);
    // NMS's resume shifts the new run past the old one's last timestamp (no jump back to 0).
    for (const x of after) assert.ok(tsOf(x) >= lastBefore, `tag at ${tsOf(x)} ms after ${lastBefore} ms`);
    assert.ok(s.hub.isLive());
  } finally {
    t.detach();
    release();
  }
  await waitUntil(() => !s.status().capture.running && !s.hub.isLive(), 10_000, 'capture stopped');
});

test('a deliberate stop drops the publish: the next viewer gets the header and no stale GOP', async () => {
  const release = s.acquire();
  const t = tap();
  await waitUntil(() => t.tags.some(isKeyframe), 15_000, 'a keyframe');
  t.detach();
  release();
  await waitUntil(() => !s.status().capture.running && !s.hub.isLive(), 10_000, 'capture stopped');
  const late = tap();
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(late.bytes().length, 13, 'the FLV header alone');
    assert.equal(late.tags.length, 0, 'no cached tag of the stopped run');
  } finally {
    late.detach();
  }
});

/** Forwards to `inner`; after `after` bytes it slips `garbage` into the stream once. */
function corrupting(inner: Writable, after: number, garbage: Buffer): Writable {
  let seen = 0;
  let done = false;
  return new Writable({
    autoDestroy: false,
    emitClose: false,
    write(chunk: Buffer, _enc, cb) {
      if (!done && seen + chunk.length > after) {
        done = true;
        const k = Math.max(0, after - seen);
        inner.write(chunk.subarray(0, k));
        inner.write(garbage);
        inner.write(chunk.subarray(k));
      } else inner.write(chunk);
      seen += chunk.length;
      cb();
    },
    final(cb) {
      inner.end();
      cb();
    },
  });
}

test('bytes on the capture pipe that are not FLV: coded ERR_HUB_INGEST, the run is stopped and restarted, nothing corrupt reaches a tap', async () => {
  assert.equal(s.status().capture.running, false, "the service's own capture is idle");
  const GARBAGE = Buffer.from('LENSCAP-NOT-FLV-'.repeat(64));
  let runs = 0;
  const failures: IngestFailure[] = [];
  const sup = new CaptureSupervisor({
    ffmpegPath: s.ffmpegPath,
    camera: createTestPatternDriver({ hasDrawtext: false }),
    request: { ...camera, device: '/dev/video0' },
    // The first run's pipe is corrupted after 20 kB (past the header and first keyframe); the next is clean.
    output: (onFailure) => {
      const w = s.hub.ingest((f) => {
        failures.push(f);
        onFailure(f);
      });
      return ++runs === 1 ? corrupting(w, 20_000, GARBAGE) : w;
    },
    logger: silentLogger(),
    backoff: { initialMs: 100, maxMs: 400 },
  });
  const t = tap();
  try {
    const failed = onceWithin<{ code: string }>(sup, 'failed', 20_000, 'the ingest failure');
    sup.start();
    const f = await failed;
    assert.equal(f.code, 'ERR_HUB_INGEST');
    assert.equal(failures.length, 1, 'reported once');
    assert.match(failures[0]!.message, /flv tag parser error|FLV tag of|not an FLV stream/);
    assert.equal(sup.status.lastError?.code, 'ERR_HUB_INGEST');
    const n = t.tags.length;
    await onceWithin(sup, 'started', 15_000, 'the capture restarted');
    await waitUntil(() => t.tags.slice(n).some(isKeyframe), 15_000, 'a keyframe from the clean run');
    assert.ok(s.hub.isLive());
    assert.equal(t.bytes().includes(GARBAGE.subarray(0, 16)), false, 'no garbage reached the tap');
  } finally {
    t.detach();
    await sup.stop();
    s.hub.dropPublish();
  }
});

test('ingest handed bytes directly: not FLV, or a tag too large to hold, is ERR_HUB_INGEST once; nothing reaches a tap', async () => {
  const t = tap();
  try {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['not FLV', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /not an FLV stream/],
      [
        // A tag header announcing 16 MiB: refused before NMS would allocate 32 MiB for it.
        'oversized tag',
        Buffer.concat([
          Buffer.from('FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'),
          Buffer.from([9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]),
          Buffer.alloc(64),
        ]),
        /FLV tag of 16777215 bytes/,
      ],
      [
        'a tag whose trailing size does not add up',
        Buffer.concat([
          Buffer.from('FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'),
          Buffer.from([9, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]),
          Buffer.from([0x17, 1, 0, 0, 0]),
          Buffer.from([0, 0, 0, 99]),
        ]),
        /flv tag parser error/,
      ],
    ];
    for (const [what, bytes, why] of cases) {
      const failures: IngestFailure[] = [];
      const w = s.hub.ingest((f) => failures.push(f));
      w.write(bytes);
      w.write(bytes); // after the failure: dropped, not reported again
      w.end();
      await new Promise((r) => setImmediate(r));
      assert.equal(failures.length, 1, `${what}: one failure`);
      assert.equal(failures[0]!.code, 'ERR_HUB_INGEST', what);
      assert.match(failures[0]!.message, why, what);
      assert.equal(s.hub.isLive(), false, `${what}: not live`);
    }
    assert.equal(t.tags.length, 0, 'no tag reached the tap');
  } finally {
    t.detach();
  }
});
