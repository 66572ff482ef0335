/**
 * The analysis ffmpeg (agent/events/analysis.ts) on real ffmpeg: a gap in the camera's timestamps
 * (a starved capture dropping frames, or the analysis itself dropping input up to the next keyframe
 * while it lags) must not come out as repeated frames. Repeats have no change, so they read as "no
 * motion", and a few of them in a row ended a still-moving event after its post-roll.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analysisArgs } from '../../agent/events/analysis.ts';
import { ffmpegHasEncoder, ffmpegPath, needsFfmpeg } from '../../harness/ffmpeg.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const W = 64;
const H = 48;

/** 6 s of a changing test picture at 15 fps as FLV, its timestamps jumping by `gapS` after 2 s. */
function cameraFlv(dir: string, gapS: number): string {
  const out = join(dir, `camera-gap${gapS}.flv`);
  execFileSync(
    ffmpegPath(),
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=320x180:rate=15:duration=6',
      '-vf',
      `setpts='if(gte(N\\,30)\\,PTS+${gapS}/TB\\,PTS)'`,
      '-c:v',
      'libx264',
      '-g',
      '15',
      '-f',
      'flv',
      out,
    ],
    { timeout: 60_000 },
  );
  return out;
}

/** The analysis ffmpeg's gray frames for one FLV file on its stdin. */
async function analyse(file: string): Promise<Buffer[]> {
  const child = spawn(ffmpegPath(), analysisArgs({ fps: 2, width: W, height: H }), {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => chunks.push(b));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.end(readFileSync(file));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(
      () => (child.kill('SIGKILL'), reject(new Error('analysis ffmpeg hung'))),
      30_000,
    );
    child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
  });
  assert.equal(code, 0, `analysis ffmpeg failed: ${stderr.slice(0, 300)}`);
  const all = Buffer.concat(chunks);
  assert.equal(all.length % (W * H), 0, 'whole frames only');
  return Array.from({ length: all.length / (W * H) }, (_, i) => all.subarray(i * W * H, (i + 1) * W * H));
}

const repeats = (frames: Buffer[]) => frames.filter((f, i) => i > 0 && f.equals(frames[i - 1]!)).length;

test(
  'analysis: a 3 s gap in the camera timestamps gives no repeated frame (a repeat reads as no motion)',
  {
    timeout: 120_000,
    ...needsFfmpeg('the libx264 encoder (to make the camera FLV)', ffmpegHasEncoder('libx264')),
  },
  async () => {
    const tmp = makeTempDir();
    try {
      const steady = await analyse(cameraFlv(tmp.dir, 0));
      const gapped = await analyse(cameraFlv(tmp.dir, 3));
      // 6 s of pictures at 2 a second, with or without the jump: about 12 frames either way.
      assert.ok(steady.length >= 11 && steady.length <= 13, `${steady.length} frames from 6 s without a gap`);
      assert.ok(
        gapped.length >= 11 && gapped.length <= 13,
        `${gapped.length} frames from 6 s with a 3 s gap`,
      );
      assert.equal(repeats(steady), 0, 'the test picture changes every frame');
      assert.equal(repeats(gapped), 0, 'frames repeated to fill the gap');
    } finally {
      tmp.cleanup();
    }
  },
);
