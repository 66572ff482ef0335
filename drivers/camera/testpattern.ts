/**
 * The test pattern camera: ffmpeg lavfi `testsrc2` with a wall-clock overlay and a label, for
 * machines without a camera (development, CI, the demo). The overlay needs drawtext and a font;
 * without them the pattern still runs, unlabelled. Never touches a device.
 *
 * Motion on demand (issue 16): with `motionFile`, the picture is still (`smptebars`; testsrc2
 * changes ~6 % of a 64x48 picture every frame, which a motion detector rightly calls motion) and
 * a large block sweeps across it whenever the hook file holds text: drawtext re-reads the file
 * every frame (`reload=1`), so `setTestPatternMotion(file, on)` switches motion without
 * restarting capture. Deterministic for tests, and what the demo and the incident replay use.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encoderArgs } from './encoder.ts';
import type { CameraDriver, CameraRequest, CaptureArgs } from './types.ts';

const FONTS = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
];

export interface TestPatternOptions {
  /** Whether this ffmpeg has the drawtext filter (probed by the caller from `ffmpeg -filters`). */
  hasDrawtext: boolean;
  /** Font file; default: the first DejaVu font found. */
  fontFile?: string;
  /** Motion hook file: still picture, moving block while the file is non-empty (needs drawtext). */
  motionFile?: string;
}

/** What the hook file holds while motion is on: three full blocks (drawn large, white on white box). */
const MOTION_TEXT = '\u2588\u2588\u2588';

/** Switches the test pattern's moving block on or off (atomic rename: ffmpeg never reads a torn file). */
export function setTestPatternMotion(file: string, on: boolean): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, on ? MOTION_TEXT : '', { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * The label is config: rather than trust three layers of ffmpeg escaping (filtergraph, option,
 * drawtext expansion), anything outside a plain set becomes a space.
 */
export function safeLabel(s: string): string {
  return s.replace(/[^A-Za-z0-9 _.@#+-]/g, ' ').slice(0, 64);
}

/** The font the overlay (and the motion hook) uses here, or undefined when none is installed. */
export function testPatternFont(): string | undefined {
  return FONTS.find((f) => existsSync(f));
}

export function testPatternArgs(req: CameraRequest, opts: TestPatternOptions): CaptureArgs {
  const font = opts.fontFile ?? testPatternFont();
  const filters: string[] = [];
  if (opts.hasDrawtext && font) {
    const common = `fontfile=${font}:fontcolor=${req.color}:box=1:boxcolor=black@0.5:boxborderw=6`;
    filters.push(
      `drawtext=${common}:fontsize=${Math.max(12, Math.round(req.height / 18))}:x=10:y=10:text='${safeLabel(req.label)}'`,
    );
    filters.push(
      `drawtext=${common}:fontsize=${Math.max(12, Math.round(req.height / 14))}:x=10:y=h-th-10:text='%{localtime}'`,
    );
  }
  const motion = opts.motionFile && opts.hasDrawtext && font ? opts.motionFile : undefined;
  if (motion) {
    // Sweeps the width about every 1.6 s; drawn first so the label and clock stay on top.
    const size = Math.max(24, Math.round(req.height / 3));
    filters.unshift(
      `drawtext=fontfile=${font}:textfile=${motion}:reload=1:fontsize=${size}:fontcolor=white:box=1:boxcolor=white:boxborderw=${Math.round(size / 6)}:x=mod(t*w*0.6\\,w):y=h/3`,
    );
  }
  const source = motion ? 'smptebars' : 'testsrc2';
  return {
    input: ['-re', '-f', 'lavfi', '-i', `${source}=size=${req.width}x${req.height}:rate=${req.fps}`],
    video: [
      ...(filters.length ? ['-vf', filters.join(',')] : []),
      ...encoderArgs('libx264', req.fps, req.gopSeconds, req.bitrateKbps),
    ],
    describe: `testpattern ${req.width}x${req.height}@${req.fps} libx264${filters.length ? ' +clock' : ''}${motion ? ' +motion hook' : ''}`,
  };
}

export function createTestPatternDriver(opts: TestPatternOptions): CameraDriver {
  return {
    name: 'testpattern',
    prepare: async (req) => {
      // drawtext refuses to start on a missing textfile: create it (no motion) once.
      if (opts.motionFile && !existsSync(opts.motionFile)) setTestPatternMotion(opts.motionFile, false);
      return testPatternArgs(req, opts);
    },
  };
}
