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

export function startSnapshot(ffmpegPath: string, seq: RingTag | undefined, gop: RingTag[]): FfmpegRun {
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
    { code: 'ERR_EVENTS_SNAPSHOT', timeoutMs: 10_000, maxOutBytes: MAX_SNAPSHOT_BYTES },
  );
  const w = new FlvWriter();
  run.stdin.write(w.start(seq));
  for (const t of frames) run.stdin.write(w.tag(t));
  run.stdin.end();
  return run;
}
