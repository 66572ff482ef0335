/**
 * The snapshot at the trigger: the GOP in progress (keyframe … newest frame) decoded by ffmpeg,
 * and only its last frame encoded as one JPEG, all in memory.
 * Must never write the JPEG anywhere (the caller seals it), nor decode more than one GOP.
 */
import { LenscapError } from '../errors.ts';
import { runFfmpeg, type FfmpegRun } from './ffmpeg-run.ts';
import { FlvWriter } from './flv-out.ts';
import type { RingTag } from './ring.ts';

export const MAX_SNAPSHOT_BYTES = 4 << 20;
/**
 * One GOP decoded and one JPEG encoded. Generous because ffmpeg alone needs seconds to start on a
 * slow board: 10 s failed every snapshot on the QEMU arm64 board (clips, with their 15 min bound,
 * were sealed); at 60 s a quiet emulated board sealed its snapshot about a minute after the
 * trigger, beside the capture and the clip, and a loaded one timed out. A real event is worth
 * the wait, and a stuck ffmpeg is still killed at the bound.
 */
export const SNAPSHOT_TIMEOUT_MS = 120_000;

export function startSnapshot(
  ffmpegPath: string,
  seq: RingTag | undefined,
  gop: RingTag[],
  timeoutMs = SNAPSHOT_TIMEOUT_MS,
): FfmpegRun {
  const frames = gop.filter((t) => t.type === 9);
  if (!seq || frames.length === 0)
    throw new LenscapError('ERR_EVENTS_SNAPSHOT', 'no keyframe in the ring yet: nothing to snapshot');
  const run = runFfmpeg(
    ffmpegPath,
    [
      '-f',
      'flv',
      '-i',
      'pipe:0',
      '-an',
      '-vf',
      `select=eq(n\\,${frames.length - 1})`,
      '-vsync',
      '0',
      '-frames:v',
      '1',
      '-c:v',
      'mjpeg',
      '-q:v',
      '4',
      '-f',
      'image2pipe',
      'pipe:1',
    ],
    { code: 'ERR_EVENTS_SNAPSHOT', timeoutMs, maxOutBytes: MAX_SNAPSHOT_BYTES },
  );
  const w = new FlvWriter();
  run.stdin.write(w.start(seq));
  for (const t of frames) run.stdin.write(w.tag(t));
  run.stdin.end();
  return run;
}
