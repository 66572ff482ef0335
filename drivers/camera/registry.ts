/**
 * Picks the camera driver from config: `v4l2`, `testpattern`, or `auto` (v4l2 when a capture
 * device exists, else the test pattern). Probes ffmpeg once for drawtext and h264_v4l2m2m.
 * Says which it chose through the callback; never throws for `auto`.
 */
import type { CameraDriver, Runner } from './types.ts';
import { PROBE_TIMEOUT_MS } from './v4l2.ts';
import { createTestPatternDriver } from './testpattern.ts';
import { captureDevices, createV4l2Driver, isEncoderNode, listVideoDevices } from './v4l2.ts';

export interface CameraSelection {
  driver: CameraDriver;
  reason: string;
}

export interface SelectCameraOptions {
  driver: 'auto' | 'v4l2' | 'testpattern';
  device: string;
  ffmpegPath: string;
  runner: Runner;
  sysfsRoot?: string;
  devRoot?: string;
  /** Test pattern: the motion hook file (still picture, block moves on demand). */
  testPatternMotionFile?: string;
}

export async function probeFfmpeg(
  ffmpegPath: string,
  runner: Runner,
): Promise<{ drawtext: boolean; v4l2m2m: boolean }> {
  // Generous: ffmpeg takes seconds just to load on a busy or emulated board, and a listing cut
  // short would silently drop drawtext or the hardware encoder.
  const opts = { timeoutMs: PROBE_TIMEOUT_MS };
  const [filters, encoders] = await Promise.all([
    runner(ffmpegPath, ['-hide_banner', '-filters'], opts),
    runner(ffmpegPath, ['-hide_banner', '-encoders'], opts),
  ]);
  return { drawtext: /\bdrawtext\b/.test(filters.out), v4l2m2m: /\bh264_v4l2m2m\b/.test(encoders.out) };
}

export async function selectCamera(opts: SelectCameraOptions): Promise<CameraSelection> {
  const caps = await probeFfmpeg(opts.ffmpegPath, opts.runner);
  const devs = listVideoDevices(opts.sysfsRoot, opts.devRoot);
  const m2mEncoder = caps.v4l2m2m && devs.some(isEncoderNode);
  const v4l2 = () => createV4l2Driver({ ffmpegPath: opts.ffmpegPath, runner: opts.runner, m2mEncoder });
  const pattern = () =>
    createTestPatternDriver({
      hasDrawtext: caps.drawtext,
      ...(opts.testPatternMotionFile ? { motionFile: opts.testPatternMotionFile } : {}),
    });
  if (opts.driver === 'v4l2') return { driver: v4l2(), reason: 'camera.driver is v4l2' };
  if (opts.driver === 'testpattern') return { driver: pattern(), reason: 'camera.driver is testpattern' };
  const capture = captureDevices(devs);
  if (capture.length > 0)
    return {
      driver: v4l2(),
      reason: `auto: capture device(s) found: ${capture.map((d) => `${d.path} (${d.name})`).join(', ')}`,
    };
  return { driver: pattern(), reason: 'auto: no V4L2 capture device, using the test pattern' };
}
