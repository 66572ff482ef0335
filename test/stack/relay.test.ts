/**
 * The push-mode relay: a real ffmpeg pushes RTMP to it, the relay reports the push and serves the
 * stream back as HTTP-FLV on loopback; a path that is not /live/<serial> is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { startRelay } from '../../scripts/dev-cloud/relay.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { within } from '../../harness/wait.ts';
import { ffmpegPath } from '../../harness/ffmpeg.ts';

function push(url: string) {
  return spawn(
    ffmpegPath(),
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x90:rate=10',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-g',
      '10',
      '-f',
      'flv',
      url,
    ],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
    },
  );
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

test('relay accepts a push on /live/<serial> and serves it back', { timeout: 20_000 }, async () => {
  const tmp = makeTempDir('lenscap-relay-');
  const relay = await startRelay({ dir: tmp.dir });
  const ff = push(relay.pushUrl('CAM-DEMO-1'));
  try {
    assert.match(relay.rtmpBase, /^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
    assert.ok(await until(() => relay.active().includes('CAM-DEMO-1'), 8000), 'push not seen');
    const bytes = await within(
      new Promise<number>((resolve, reject) => {
        const req = http.get(`${relay.httpBase}/live/CAM-DEMO-1.flv`, (res) => {
          let n = 0;
          res.on('data', (d: Buffer) => {
            n += d.length;
            if (n > 2000) {
              req.destroy();
              resolve(n);
            }
          });
        });
        req.on('error', reject);
      }),
      10_000,
      '2000 FLV bytes from the relay',
    );
    assert.ok(bytes > 2000);
  } finally {
    ff.stdin?.end('q');
    ff.kill('SIGTERM');
    await relay.close();
    tmp.cleanup();
  }
});
