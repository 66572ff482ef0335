/**
 * The test pattern camera: ffmpeg lavfi `testsrc2` with a wall-clock overlay and a label, for
 * machines without a camera (development, CI, the demo). The overlay needs drawtext and a font;
 * without them the pattern still runs, unlabelled. Never touches a device.
 */
import { existsSync } from 'node:fs';
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
}

/**
 * The label is config: rather than trust three layers of ffmpeg escaping (filtergraph, option,
 * drawtext expansion), anything outside a plain set becomes a space.
 */
export function safeLabel(s: string): string {
  return s.replace(/[^A-Za-z0-9 _.@#+-]/g, ' ').slice(0, 64);
}

export function testPatternArgs(req: CameraRequest, opts: TestPatternOptions): CaptureArgs {
  const font = opts.fontFile ?? FONTS.find((f) => existsSync(f));
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
  return {
    input: ['-re', '-f', 'lavfi', '-i', `testsrc2=size=${req.width}x${req.height}:rate=${req.fps}`],
    video: [
      ...(filters.length ? ['-vf', filters.join(',')] : []),
      ...encoderArgs('libx264', req.fps, req.gopSeconds, req.bitrateKbps),
    ],
    describe: `testpattern ${req.width}x${req.height}@${req.fps} libx264${filters.length ? ' +clock' : ''}`,
  };
}

export function createTestPatternDriver(opts: TestPatternOptions): CameraDriver {
  return {
    name: 'testpattern',
    prepare: async (req) => testPatternArgs(req, opts),
  };
}
