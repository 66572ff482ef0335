/**
 * The pure motion decisions and the pre-roll ring, without processes: frame difference with
 * threshold and minimum area, zones and masks, cooldown, post-roll and the maximum length; the
 * ring holds only the pre-roll, starts on a keyframe, never exceeds its byte cap, and forgets
 * everything on clear().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FRAME_STALL_MS,
  MotionDetector,
  changedShare,
  decide,
  watchMask,
  type MotionPhase,
} from '../../agent/events/motion.ts';
import { GopRing, tagTimeBytes, tagTimeMs, type RingTag } from '../../agent/events/ring.ts';

const W = 64;
const H = 48;
const still = () => new Uint8Array(W * H).fill(100);
/** A still frame with a bright w×h block at (x, y). */
function block(x: number, y: number, w: number, h: number): Uint8Array {
  const f = still();
  for (let j = y; j < Math.min(H, y + h); j++)
    for (let i = x; i < Math.min(W, x + w); i++) f[j * W + i] = 250;
  return f;
}
const params = { postRollMs: 2000, maxClipMs: 10_000, cooldownMs: 5000 };
const detector = (o: Partial<typeof params> = {}) =>
  new MotionDetector({
    ...params,
    ...o,
    width: W,
    height: H,
    pixelThreshold: 25,
    minChangedShare: 0.02,
    zones: [],
    masks: [],
  });

test('changedShare: threshold and area; wrong-size frames are no motion', () => {
  const m = watchMask(W, H, [], []);
  assert.equal(changedShare(still(), still(), m, 25), 0);
  assert.equal(changedShare(still(), block(0, 0, 8, 6), m, 25), (8 * 6) / (W * H));
  const dim = still().map((v) => v + 20);
  assert.equal(changedShare(still(), dim, m, 25), 0, 'below threshold: noise, not motion');
  assert.equal(changedShare(still(), new Uint8Array(10), m, 25), 0);
});

test('zones and masks decide which pixels are watched', () => {
  const left = watchMask(W, H, [{ x: 0, y: 0, w: 0.5, h: 1 }], []);
  assert.equal(changedShare(still(), block(40, 0, 24, 48), left, 25), 0, 'motion outside the zone');
  assert.ok(changedShare(still(), block(0, 0, 8, 8), left, 25) > 0);
  const masked = watchMask(W, H, [], [{ x: 0, y: 0, w: 0.25, h: 0.25 }]);
  assert.equal(changedShare(still(), block(0, 0, 16, 12), masked, 25), 0, 'masked corner');
  const none = watchMask(W, H, [], [{ x: 0, y: 0, w: 1, h: 1 }]);
  assert.equal(changedShare(still(), block(0, 0, 64, 48), none, 25), 0, 'nothing watched: no motion');
});

test('phase machine: start once, post-roll, max length, cooldown', () => {
  let p: MotionPhase = { kind: 'idle' };
  const step = (motion: boolean, t: number) => {
    const r = decide(p, motion, t, params);
    p = r.phase;
    return r.action;
  };
  assert.equal(step(false, 0), 'none');
  assert.equal(step(true, 100), 'start');
  assert.equal(step(true, 300), 'none', 'no second start during an event');
  assert.equal(step(false, 2000), 'none');
  assert.equal(step(false, 2300), 'end', 'post-roll after the last motion');
  assert.equal(step(true, 3000), 'none', 'cooling down');
  assert.equal(step(true, 7300), 'start', 'after the cooldown');
  for (let t = 7500; t < 17_300; t += 200) assert.equal(step(true, t), 'none');
  assert.equal(step(true, 17_300), 'end', 'capped at maxClipMs even while moving');
});

test('property: starts and ends alternate, start first; no event longer than maxClipMs; starts ≥ cooldown apart after an end', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 1500 })), { maxLength: 200 }),
      (steps) => {
        let p: MotionPhase = { kind: 'idle' };
        let t = 0;
        let open: number | undefined;
        let lastEnd = -Infinity;
        for (const [motion, dt] of steps) {
          t += dt;
          const r = decide(p, motion, t, params);
          p = r.phase;
          if (r.action === 'start') {
            assert.equal(open, undefined);
            assert.ok(t - lastEnd >= params.cooldownMs);
            open = t;
          } else if (r.action === 'end') {
            assert.notEqual(open, undefined);
            assert.ok(t - open! <= params.maxClipMs + 1500);
            open = undefined;
            lastEnd = t;
          }
        }
      },
    ),
  );
});

test('MotionDetector: analysis frames that lag (a busy CPU) do not end an event; frames that stop do, and maxClip holds', () => {
  // On the QEMU board a snapshot encode starved the analysis ffmpeg and its frames came seconds
  // late; a timer that took late frames for stopped ones ended the event after the post-roll (one
  // of the two ways a 12 s clip of a still-moving scene came out 3.9 s long, see analysis.test.ts).
  const d = detector();
  let t = 0;
  d.frame(still(), t);
  assert.equal(d.frame(block(0, 10, 16, 16), (t += 200)), 'start');
  // The analysis stalls for 4 s (> postRollMs 2000): the timer keeps ticking meanwhile.
  for (let i = 0; i < 8; i++) assert.equal(d.tick((t += 500)), 'none', `tick ${i} during the lag`);
  // The late frames arrive in a burst, still moving: the event goes on.
  assert.equal(d.frame(block(8, 10, 16, 16), (t += 10)), 'none');
  assert.equal(d.frame(block(16, 10, 16, 16), (t += 10)), 'none');
  assert.equal(d.phase.kind, 'event');
  // A frame without motion, post-roll after the last moving one: the frames decide the end.
  assert.equal(d.frame(block(16, 10, 16, 16), t + 2100), 'end');

  // Frames that stop altogether: the timer ends the event FRAME_STALL_MS after the post-roll…
  const untilEnd = (m: MotionDetector, from: number) => {
    for (let u = from + 500; u < from + 120_000; u += 500) if (m.tick(u) === 'end') return u - from;
    return undefined;
  };
  const e = detector({ maxClipMs: 120_000 });
  e.frame(still(), 0);
  assert.equal(e.frame(block(0, 10, 16, 16), 200), 'start');
  const afterLast = untilEnd(e, 200);
  assert.ok(afterLast !== undefined, 'an event whose frames stopped still ends');
  assert.ok(
    afterLast! >= params.postRollMs + FRAME_STALL_MS &&
      afterLast! <= params.postRollMs + FRAME_STALL_MS + 500,
    `ended ${afterLast} ms after the last frame`,
  );
  // …and maxClipMs, when it comes first, on time with no frame at all.
  const f = detector();
  f.frame(still(), 0);
  assert.equal(f.frame(block(0, 10, 16, 16), 200), 'start');
  const afterStart = untilEnd(f, 200);
  assert.ok(
    afterStart !== undefined && afterStart >= params.maxClipMs && afterStart <= params.maxClipMs + 500,
    `ended ${afterStart} ms after the start`,
  );
});

test('MotionDetector: a moving block triggers, a still picture never does, reset forgets the previous frame', () => {
  const d = detector();
  let t = 0;
  for (let i = 0; i < 20; i++) assert.equal(d.frame(still(), (t += 200)), 'none');
  assert.equal(d.frame(block(0, 10, 16, 16), (t += 200)), 'start');
  assert.equal(d.frame(block(8, 10, 16, 16), (t += 200)), 'none');
  assert.equal(d.tick((t += 2500)), 'none', 'a late frame is not a stopped one');
  assert.equal(d.tick((t += FRAME_STALL_MS)), 'end', 'frames that stopped end the event');
  d.reset();
  assert.equal(d.phase.kind, 'idle');
  assert.equal(
    d.frame(block(0, 0, 64, 48), t + 200),
    'none',
    'first frame after reset has nothing to compare',
  );
});

function tag(tsMs: number, key: boolean, size = 1000, at = tsMs): RingTag {
  const body = Buffer.alloc(size);
  body[0] = key ? 0x17 : 0x27;
  body[1] = 1;
  return { type: 9, tsMs, body, at };
}
const seq: RingTag = { type: 9, tsMs: 0, body: Buffer.from([0x17, 0, 0, 0, 0, 1, 2, 3]), at: 0 };

test('ring: holds the pre-roll from a keyframe, trims older GOPs, keeps the sequence header aside', () => {
  const r = new GopRing({ preRollMs: 3000, maxBytes: 1 << 20 });
  r.push(tag(0, false)); // before any keyframe: dropped
  r.push(seq);
  assert.equal(r.bytes, 0);
  for (let ms = 0; ms <= 10_000; ms += 100) r.push(tag(ms, ms % 1000 === 0));
  const pre = r.preRoll();
  assert.equal(pre[0]!.body[0], 0x17, 'starts on a keyframe');
  assert.equal(pre[0]!.tsMs, 7000, 'the newest keyframe at or before newest − pre-roll');
  assert.equal(r.spanMs, 3000);
  assert.equal(r.gopCount, 4);
  assert.equal(r.sequenceHeader, seq);
  assert.equal(r.currentGop()[0]!.tsMs, 10_000);
  r.clear();
  assert.equal(r.bytes, 0);
  assert.equal(r.preRoll().length, 0);
  assert.equal(r.sequenceHeader, undefined);
});

test('ring bound: never above maxBytes whatever the GOP sizes (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 40_000 })), { maxLength: 300 }),
      fc.integer({ min: 50_000, max: 200_000 }),
      (tags, maxBytes) => {
        const r = new GopRing({ preRollMs: 3000, maxBytes });
        let ms = 0;
        for (const [key, size] of tags) {
          r.push(tag((ms += 66), key, size));
          assert.ok(r.bytes <= maxBytes, `${r.bytes} > ${maxBytes}`);
          const pre = r.preRoll();
          if (pre.length) assert.equal(pre[0]!.body[0], 0x17);
          assert.equal(
            r.bytes,
            pre.reduce((n, t) => n + t.body.length + 15, 0),
          );
        }
      },
    ),
  );
});

test('FLV timestamps: 24 bits + extension byte round-trip', () => {
  for (const ms of [0, 1, 0xffffff, 0x1000000, 0x7fffffff, 4_000_000_000])
    assert.equal(tagTimeMs(tagTimeBytes(ms)), ms);
});
