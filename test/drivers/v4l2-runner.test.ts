/**
 * The V4L2 driver's probe with real child processes (a shell script standing in for a slow ffmpeg):
 * not in the unit tier, which forbids starting programs. The parsing and decisions are tested in
 * v4l2.test.ts without any child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createV4l2Driver } from '../../drivers/camera/v4l2.ts';
import { execRunner } from '../../drivers/camera/runner.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { VIVID, req } from './v4l2-fixtures.ts';

// Seen on the QEMU arm64 board: ffmpeg needs ~5 s just to start there, the probe was killed at a
// fixed 5 s, its empty output read as "no capture formats" and the camera retried forever.
test('driver: a probe slower than 5 s still finds the formats (real child through execRunner)', async () => {
  const tmp = makeTempDir();
  try {
    const slow = join(tmp.dir, 'slow-ffmpeg');
    writeFileSync(slow, `#!/bin/sh\nsleep 5.5\ncat >&2 <<'X'\n${VIVID}\nX\nexit 1\n`, { mode: 0o755 });
    const d = createV4l2Driver({
      ffmpegPath: slow,
      runner: execRunner,
      m2mEncoder: false,
      exists: () => true,
    });
    const args = await d.prepare({ ...req, width: 320, height: 180 });
    assert.match(args.describe, /yuyv422 320x180@15 libx264/);
  } finally {
    tmp.cleanup();
  }
});

test('execRunner: a child past its bound is killed and reported as timed out', async () => {
  const t0 = Date.now();
  const r = await execRunner('/bin/sh', ['-c', 'echo started >&2; sleep 20'], { timeoutMs: 300 });
  assert.equal(r.timedOut, true);
  assert.match(r.out, /started/);
  // The child would sleep 20 s: returning well before that means it was killed at its bound.
  assert.ok(Date.now() - t0 < 15_000, `returned after ${Date.now() - t0} ms: not killed at its 300 ms bound`);
  const ok = await execRunner('/bin/sh', ['-c', 'echo fine'], { timeoutMs: 5000 });
  assert.deepEqual(ok, { code: 0, out: 'fine\n' });
});
