/**
 * Motion events end to end with real ffmpeg and the real in-process hub: the test pattern's moving
 * block → one snapshot + one clip, each sealed to every membership viewer key and spooled; the
 * bound viewer's key opens them and the JPEG / MP4 decode (ffmpeg); a key outside the membership
 * cannot open them; privacy kills analysis, discards the ring and records nothing; a membership
 * without keys records nothing with ERR_EVENTS_NO_VIEWER_KEYS and a `motion_not_recorded` event;
 * events off run no analysis process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openArtifact } from '../../agent/sealing/artifact.ts';
import { ffmpegPath, needsDrawtext } from '../../harness/ffmpeg.ts';
import { makeViewer, type TestViewer } from '../../harness/viewer-keys.ts';
import { makeEventsFixture, SERIAL, type EventsFixture } from './fixture.ts';
import { quietFor, waitUntil } from '../../harness/wait.ts';

const skip = needsDrawtext();
let fx: EventsFixture;
let alice: TestViewer;
let bob: TestViewer;
let mallory: TestViewer;

before(async () => {
  if (skip.skip) return;
  fx = await makeEventsFixture();
  alice = await makeViewer('kid-alice');
  bob = await makeViewer('kid-bob', 'P-256');
  mallory = await makeViewer('kid-mallory');
});
after(async () => {
  await fx?.close();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Frames ffmpeg decodes from `bytes` (fails the test if it cannot decode them). */
function decodeFrames(bytes: Uint8Array, format: 'mjpeg' | 'mp4'): number {
  const out = execFileSync(
    ffmpegPath(),
    [
      '-hide_banner',
      '-v',
      'error',
      '-f',
      format === 'mjpeg' ? 'jpeg_pipe' : 'mp4',
      '-i',
      'pipe:0',
      '-f',
      'framemd5',
      '-',
    ],
    { input: bytes, encoding: 'utf8', timeout: 30_000 },
  );
  return out.split('\n').filter((l) => /^\d+,/.test(l)).length;
}

test(
  'motion from the test pattern: one snapshot + one clip, sealed to every member key; they decode; a key outside the membership cannot open them',
  skip,
  async () => {
    const { svc, got } = fx.makeEvents(() => ({
      version: 4,
      keys: [alice.key, bob.key],
    }));
    svc.start();
    // A still picture first: the ring fills, no event.
    await waitUntil(
      () => svc.status().ring.gops >= 3 && svc.status().analysis.frames >= 10,
      20_000,
      'ring and analysis warm',
    );
    assert.equal(svc.status().counters.events, 0, 'a still picture is no motion');
    const ring = svc.status().ring;
    assert.ok(ring.bytes > 0 && ring.bytes <= ring.maxBytes, `ring bounded: ${JSON.stringify(ring)}`);
    assert.ok(ring.spanMs <= 2000 + 1100, `ring holds only the pre-roll (+1 GOP): ${ring.spanMs} ms`);
    fx.motion(true);
    await waitUntil(() => svc.status().counters.events === 1, 10_000, 'the motion event');
    await fx.motionLasts(svc, 1.5); // so the clip has motion between its rolls
    fx.motion(false);
    await waitUntil(
      () => svc.status().counters.snapshots === 1 && svc.status().counters.clips === 1,
      20_000,
      'snapshot + clip',
    );
    await svc.settled();
    await svc.stop();
    assert.equal(got.length, 2);
    assert.equal(svc.status().counters.events, 1, 'one event');
    const snap = got.find((a) => a.kind === 'snapshot')!;
    const clip = got.find((a) => a.kind === 'clip')!;
    assert.equal(snap.eventId, clip.eventId);
    assert.equal(snap.id, `${SERIAL}-${snap.eventId}-snap`);
    assert.equal(clip.id, `${SERIAL}-${clip.eventId}-clip`);
    assert.match(snap.id, /^[A-Za-z0-9_-]+$/);
    for (const a of got) {
      assert.equal(a.v, 1);
      assert.deepEqual(a.sealedTo, ['kid-alice', 'kid-bob']);
      assert.equal(a.membershipVersion, 4);
      assert.equal(a.path, `${fx.spoolDir}/${a.id}.sealed`);
      const bytes = readFileSync(a.path);
      assert.equal(bytes.length, a.size);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), a.sha256);
      const no = await openArtifact(bytes, mallory.keyPair, { serial: SERIAL, id: a.id });
      assert.equal(no.ok, false);
      assert.equal(!no.ok && no.code, 'ERR_SEAL_NOT_FOR_YOU');
      for (const v of [alice, bob]) {
        const r = await openArtifact(bytes, v.keyPair, { serial: SERIAL, id: a.id });
        assert.ok(r.ok, `${v.kid} opens ${a.kind}`);
        assert.equal(r.header.contentType, a.contentType);
        if (a.kind === 'snapshot') {
          assert.equal(a.contentType, 'image/jpeg');
          assert.equal(a.durationMs, 0);
          assert.deepEqual([...r.plaintext.subarray(0, 2)], [0xff, 0xd8], 'JPEG SOI');
          assert.equal(decodeFrames(r.plaintext, 'mjpeg'), 1);
          assert.ok(
            !bytes.includes(Buffer.from(r.plaintext.subarray(200, 260))),
            'no JPEG bytes in the clear',
          );
        } else {
          assert.equal(a.contentType, 'video/mp4');
          const frames = decodeFrames(r.plaintext, 'mp4');
          // pre-roll ≥ ~1 s, ~1.5 s of motion, 1 s post-roll, at 15 fps.
          assert.ok(frames >= 15 * 3, `clip frames ${frames}`);
          assert.ok(a.durationMs >= 3000 && a.durationMs <= 8000 + 100, `clip duration ${a.durationMs}`);
          assert.ok(
            Math.abs(frames * (1000 / 15) - a.durationMs) < 700,
            `duration ${a.durationMs} ≈ ${frames} frames`,
          );
          assert.ok(a.startedAt < snap.startedAt, 'the clip starts before the trigger (pre-roll)');
        }
      }
    }
  },
);

test(
  'privacy stops detection and recording at once: analysis killed, ring discarded, the clip in progress never written',
  skip,
  async () => {
    for (const f of fx.spoolFiles()) void f;
    const before = new Set(fx.spoolFiles());
    const { svc, got } = fx.makeEvents(() => ({ version: 1, keys: [alice.key] }), { postRollSeconds: 5 });
    svc.start();
    await waitUntil(() => svc.status().ring.gops >= 2 && svc.status().analysis.frames >= 5, 20_000, 'warm');
    fx.motion(true);
    await waitUntil(() => svc.status().phase === 'event', 10_000, 'the motion event');
    const pid = svc.status().analysis.pid!;
    assert.ok(alive(pid));
    const snapsBefore = got.filter((a) => a.kind === 'snapshot').length;
    fx.privacy.set(true, 'test');
    const s = svc.status();
    assert.equal(s.running, false);
    assert.equal(s.ring.bytes, 0, 'ring discarded at once');
    assert.equal(s.ring.gops, 0);
    await waitUntil(() => !alive(pid), 3000, 'analysis ffmpeg gone');
    // Motion goes on under privacy: nothing more is recorded.
    await quietFor(3000, 'no snapshot or clip while privacy is on, with motion going on');
    await svc.settled();
    assert.equal(got.filter((a) => a.kind === 'clip').length, 0, 'no clip');
    assert.equal(got.filter((a) => a.kind === 'snapshot').length, snapsBefore, 'no snapshot after privacy');
    assert.ok(svc.status().counters.discarded >= 1);
    const added = fx.spoolFiles().filter((f) => !before.has(f) && !got.some((a) => a.path.endsWith(f)));
    assert.deepEqual(added, [], 'nothing else in the spool');
    assert.equal(svc.status().analysis.pid, null);
    fx.privacy.set(false, 'test');
    fx.motion(false);
    await svc.stop();
  },
);

test(
  'a membership without viewer keys: nothing recorded, ERR_EVENTS_NO_VIEWER_KEYS, a motion_not_recorded event',
  skip,
  async () => {
    const before = fx.spoolFiles().length;
    for (const m of [() => undefined, () => ({ version: 2, keys: [] })]) {
      const { svc, got, events } = fx.makeEvents(m);
      svc.start();
      await waitUntil(() => svc.status().ring.gops >= 2 && svc.status().analysis.frames >= 5, 20_000, 'warm');
      fx.motion(true);
      await waitUntil(() => svc.status().counters.events === 1, 10_000, 'the motion event');
      await fx.motionLasts(svc, 1); // an event that would be recorded
      fx.motion(false);
      await svc.settled();
      const s = svc.status();
      assert.equal(s.counters.notRecorded, 1);
      assert.equal(s.lastError?.code, 'ERR_EVENTS_NO_VIEWER_KEYS');
      assert.equal(got.length, 0);
      assert.equal(fx.spoolFiles().length, before, 'nothing spooled');
      const ev = events.events.find((e) => e.type === 'motion_not_recorded');
      assert.equal(ev?.reason, 'ERR_EVENTS_NO_VIEWER_KEYS');
      await svc.stop();
    }
  },
);

test(
  'events off: no analysis process, no capture lease; on by command, off again at once',
  skip,
  async () => {
    const { svc } = fx.makeEvents(() => ({ version: 1, keys: [alice.key] }), { enabled: false });
    svc.start();
    await quietFor(1500, 'no analysis process and no capture lease while events are off');
    assert.equal(svc.status().running, false);
    assert.equal(svc.status().analysis.pid, null);
    assert.equal(fx.stream.status().leases, 0, 'no capture lease');
    svc.setEnabled(true, 'test');
    await waitUntil(() => svc.status().analysis.pid !== null, 5000, 'analysis on');
    assert.equal(fx.stream.status().leases, 1);
    const pid = svc.status().analysis.pid!;
    svc.setEnabled(false, 'test');
    assert.equal(fx.stream.status().leases, 0);
    assert.equal(svc.status().ring.bytes, 0);
    await waitUntil(() => !alive(pid), 3000, 'analysis ffmpeg gone');
    await svc.stop();
  },
);
