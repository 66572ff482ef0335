/**
 * Motion detection as pure decisions over small grayscale frames (issue 16). Two steps:
 *   1. `changedShare`: the share of watched pixels whose gray level moved by at least the
 *      threshold since the previous analysed frame (frame difference; zones and masks decide
 *      which pixels are watched, see `watchMask`).
 *   2. `decide`: the event phase machine — idle → event on enough change (not while cooling
 *      down); an event ends `postRollMs` after the last moving frame or at `maxClipMs`, whichever
 *      comes first; then no new event for `cooldownMs`.
 * The analysed frames decide the post-roll, not the timer: frames that come late (the analysis
 * ffmpeg starved by a snapshot encode on a slow board) are still frames of a moving scene, and the
 * clip records the hub's media meanwhile. The timer only ends an event at `maxClipMs`, or once no
 * frame at all has come for `postRollMs + FRAME_STALL_MS` (the analysis stopped).
 * No clock, no I/O, no buffers kept: the caller holds the previous frame and the phase.
 * Must never allocate per pixel per frame beyond the one mask, nor decide from a frame of the
 * wrong size (it is refused as no motion, never as motion).
 */

export interface Rect {
  /** Fractions of the picture, 0..1. */
  x: number;
  y: number;
  w: number;
  h: number;
}

/** 1 = watched. Zones (empty: everything) minus masks. */
export function watchMask(
  width: number,
  height: number,
  zones: readonly Rect[],
  masks: readonly Rect[],
): Uint8Array {
  const m = new Uint8Array(width * height);
  const paint = (r: Rect, v: number) => {
    const x0 = Math.max(0, Math.floor(r.x * width));
    const y0 = Math.max(0, Math.floor(r.y * height));
    const x1 = Math.min(width, Math.ceil((r.x + r.w) * width));
    const y1 = Math.min(height, Math.ceil((r.y + r.h) * height));
    for (let y = y0; y < y1; y++) m.fill(v, y * width + x0, y * width + x1);
  };
  if (zones.length === 0) m.fill(1);
  else for (const z of zones) paint(z, 1);
  for (const k of masks) paint(k, 0);
  return m;
}

/** Share (0..1) of watched pixels that changed by ≥ threshold; 0 for frames of the wrong size or no watched pixel. */
export function changedShare(prev: Uint8Array, cur: Uint8Array, mask: Uint8Array, threshold: number): number {
  if (prev.length !== mask.length || cur.length !== mask.length) return 0;
  let watched = 0;
  let changed = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === 0) continue;
    watched++;
    const d = prev[i]! - cur[i]!;
    if (d >= threshold || -d >= threshold) changed++;
  }
  return watched === 0 ? 0 : changed / watched;
}

export type MotionPhase =
  | { kind: 'idle' }
  | { kind: 'event'; startedAt: number; lastMotionAt: number }
  | { kind: 'cooldown'; until: number };

export interface DecideParams {
  postRollMs: number;
  maxClipMs: number;
  cooldownMs: number;
}

export type MotionAction = 'none' | 'start' | 'end';

/**
 * How long past the post-roll the timer waits for a late analysed frame before it takes the
 * frames as stopped and ends the event. On the QEMU board the analysis lagged by 2–4 s while a
 * snapshot was encoded; a real board's lag is shorter, and `maxClipMs` bounds the event anyway.
 */
export const FRAME_STALL_MS = 10_000;

/**
 * One step. `motion` is this frame's verdict (`changedShare ≥ minChangedShare`); a timer may also
 * call with `motion: false` so an event ends on time when frames stop coming.
 */
export function decide(
  phase: MotionPhase,
  motion: boolean,
  now: number,
  p: DecideParams,
): { phase: MotionPhase; action: MotionAction } {
  if (phase.kind === 'cooldown') {
    if (now < phase.until) return { phase, action: 'none' };
    phase = { kind: 'idle' };
  }
  if (phase.kind === 'idle') {
    if (!motion) return { phase, action: 'none' };
    return { phase: { kind: 'event', startedAt: now, lastMotionAt: now }, action: 'start' };
  }
  const last = motion ? now : phase.lastMotionAt;
  if (now - phase.startedAt >= p.maxClipMs || now - last >= p.postRollMs)
    return { phase: { kind: 'cooldown', until: now + p.cooldownMs }, action: 'end' };
  return { phase: { kind: 'event', startedAt: phase.startedAt, lastMotionAt: last }, action: 'none' };
}

/** The stateful wrapper the service uses: previous frame + phase, still no clock of its own. */
export class MotionDetector {
  private prev: Uint8Array | undefined;
  /** When the last analysed frame came (the timer's "frames stopped" edge). */
  private lastFrameAt = 0;
  phase: MotionPhase = { kind: 'idle' };
  readonly mask: Uint8Array;
  lastShare = 0;

  constructor(
    private readonly p: DecideParams & {
      width: number;
      height: number;
      pixelThreshold: number;
      minChangedShare: number;
      zones: readonly Rect[];
      masks: readonly Rect[];
    },
  ) {
    this.mask = watchMask(p.width, p.height, p.zones, p.masks);
  }

  /** Feeds one analysed frame (width × height gray bytes). */
  frame(gray: Uint8Array, now: number): MotionAction {
    const prev = this.prev;
    this.prev = Uint8Array.from(gray);
    this.lastFrameAt = now;
    this.lastShare = prev ? changedShare(prev, gray, this.mask, this.p.pixelThreshold) : 0;
    return this.step(this.lastShare >= this.p.minChangedShare, now);
  }

  /**
   * Time passes without a frame: the event ends at `maxClipMs`, or once the frames stopped
   * (`postRollMs + FRAME_STALL_MS` without any); a frame that is merely late decides for itself.
   */
  tick(now: number): MotionAction {
    if (this.phase.kind !== 'event') return 'none';
    const capped = now - this.phase.startedAt >= this.p.maxClipMs;
    const stopped = now - this.lastFrameAt >= this.p.postRollMs + FRAME_STALL_MS;
    return capped || stopped ? this.step(false, now) : 'none';
  }

  /** Forget everything (privacy, disable): the next frame is a first frame again. */
  reset(): void {
    this.prev = undefined;
    this.lastFrameAt = 0;
    this.phase = { kind: 'idle' };
    this.lastShare = 0;
  }

  private step(motion: boolean, now: number): MotionAction {
    const r = decide(this.phase, motion, now, this.p);
    this.phase = r.phase;
    return r.action;
  }
}
