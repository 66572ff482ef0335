/**
 * The snapshot encoder on a slow board: ffmpeg that takes longer than 10 s (as on the QEMU arm64
 * board, where every snapshot failed ERR_EVENTS_SNAPSHOT while clips were sealed) still yields its
 * JPEG; one that runs past the bound is killed with the coded error.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSnapshot } from '../../agent/events/snapshot.ts';
import type { RingTag } from '../../agent/events/ring.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const seq: RingTag = { type: 9, tsMs: 0, body: Buffer.from([0x17, 0, 0, 0, 0]), at: 0 };
const gop: RingTag[] = [{ type: 9, tsMs: 0, body: Buffer.from([0x17, 1, 0, 0, 0, 1]), at: 0 }];

function fakeFfmpeg(dir: string, seconds: number): string {
  const f = join(dir, 'slow-ffmpeg');
  // Reads all input like ffmpeg, then answers after `seconds` with a JPEG-looking payload. The
  // last command is exec'd so a kill reaches the process holding stdout (ffmpeg has no children).
  writeFileSync(f, `#!/bin/sh\ncat >/dev/null\nsleep ${seconds}\nexec printf 'JPEG'\n`, { mode: 0o755 });
  return f;
}

test('a snapshot ffmpeg slower than 10 s still delivers its JPEG', { timeout: 30_000 }, async () => {
  const tmp = makeTempDir();
  try {
    const jpeg = await startSnapshot(fakeFfmpeg(tmp.dir, 10.5), seq, gop).done;
    assert.equal(jpeg.toString(), 'JPEG');
  } finally {
    tmp.cleanup();
  }
});

test('a snapshot ffmpeg past its bound is killed: ERR_EVENTS_SNAPSHOT', { timeout: 10_000 }, async () => {
  const tmp = makeTempDir();
  try {
    const never = join(tmp.dir, 'stuck-ffmpeg');
    writeFileSync(never, '#!/bin/sh\ncat >/dev/null\nexec sleep 20\n', { mode: 0o755 });
    await assert.rejects(startSnapshot(never, seq, gop, 300).done, {
      code: 'ERR_EVENTS_SNAPSHOT',
      message: /longer than 300 ms/,
    });
  } finally {
    tmp.cleanup();
  }
});
