/**
 * A camera that is busy, then free: the supervisor reports each coded error, retries with a
 * growing delay, and starts capture once the device is usable — the agent never goes down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CaptureSupervisor } from '../../agent/stream/supervisor.ts';
import { silentLogger } from '../../agent/log.ts';
import { CameraError, type CameraDriver, type CameraRequest } from '../../drivers/camera/types.ts';
import { testPatternArgs } from '../../drivers/camera/testpattern.ts';
import { onceWithin } from '../../harness/wait.ts';
import { ffmpegPath } from '../../harness/ffmpeg.ts';

const req: CameraRequest = {
  device: '/dev/video0',
  width: 160,
  height: 90,
  fps: 10,
  gopSeconds: 1,
  bitrateKbps: 200,
  label: 'x',
  color: 'white',
};

test('busy → missing → usable: coded errors, backoff, then capture', async () => {
  let calls = 0;
  const driver: CameraDriver = {
    name: 'v4l2',
    async prepare(r) {
      calls++;
      if (calls === 1) throw new CameraError('ERR_CAMERA_BUSY', 'busy');
      if (calls === 2) throw new CameraError('ERR_CAMERA_MISSING', 'gone');
      return testPatternArgs(r, { hasDrawtext: false });
    },
  };
  const sup = new CaptureSupervisor({
    ffmpegPath: ffmpegPath(),
    camera: driver,
    request: req,
    output: '/dev/null',
    logger: silentLogger(),
    random: () => 0.5,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  const failures: Array<{ code: string; retryInMs: number }> = [];
  sup.on('failed', (f) => failures.push(f));
  // The retry timer is unref'd (the agent's servers keep it alive); here nothing else does.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const started = onceWithin<number>(sup, 'started', 30_000, "the supervisor's 'started' (ffmpeg running)");
    sup.start();
    const pid = await started;
    assert.ok(pid > 0);
    assert.deepEqual(
      failures.map((f) => f.code),
      ['ERR_CAMERA_BUSY', 'ERR_CAMERA_MISSING'],
    );
    assert.ok(failures[1]!.retryInMs > failures[0]!.retryInMs, 'the delay grows');
    assert.equal(sup.status.lastError?.code, 'ERR_CAMERA_MISSING');
  } finally {
    await sup.stop();
    clearInterval(keepAlive);
  }
  assert.equal(sup.pid(), undefined);
});

// Seen in CI's Node-only pass: a viewer left (stop) and the next one came (start) before the old
// ffmpeg's exit was seen; that exit counted as a failure of the new period (ERR_CAPTURE_EXITED
// named to a viewer that never had a capture) and the new capture waited out a backoff.
test('stop then start before the old run has exited: no failure, the new period captures', async () => {
  const driver: CameraDriver = {
    name: 'testpattern',
    prepare: async (r) => testPatternArgs(r, { hasDrawtext: false }),
  };
  const sup = new CaptureSupervisor({
    ffmpegPath: ffmpegPath(),
    camera: driver,
    request: req,
    output: '/dev/null',
    logger: silentLogger(),
    random: () => 0.5,
    backoff: { initialMs: 20_000, maxMs: 20_000 },
  });
  const failures: string[] = [];
  sup.on('failed', (f: { code: string }) => failures.push(f.code));
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const first = onceWithin<number>(sup, 'started', 30_000, 'the first capture');
    sup.start();
    const pid1 = await first;
    const second = onceWithin<number>(sup, 'started', 15_000, "the second period's capture (no backoff)");
    const stopped = sup.stop();
    sup.start();
    await stopped;
    const pid2 = await second;
    assert.notEqual(pid2, pid1);
    assert.deepEqual(failures, []);
    assert.equal(sup.status.lastError, undefined);
  } finally {
    await sup.stop();
    clearInterval(keepAlive);
  }
});

test('an output the hub will not give (a coded throw from the factory) is a failure and a retry, never a crash', async () => {
  const { LenscapError } = await import('../../agent/errors.ts');
  const { Writable } = await import('node:stream');
  let calls = 0;
  const sup = new CaptureSupervisor({
    ffmpegPath: ffmpegPath(),
    camera: { name: 'testpattern', prepare: async (r) => testPatternArgs(r, { hasDrawtext: false }) },
    request: req,
    output: () => {
      if (++calls === 1) throw new LenscapError('ERR_HUB_RUNNING', 'hub refused the capture run');
      return new Writable({ write: (_c, _e, cb) => cb(), autoDestroy: false, emitClose: false });
    },
    logger: silentLogger(),
    random: () => 0.5,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const failed = onceWithin<{ code: string }>(sup, 'failed', 10_000, 'the refusal as a failure');
    const started = onceWithin<number>(sup, 'started', 30_000, 'capture on the retry');
    sup.start();
    assert.equal((await failed).code, 'ERR_HUB_RUNNING');
    assert.ok((await started) > 0);
    assert.equal(calls, 2);
  } finally {
    clearInterval(keepAlive);
    await sup.stop();
  }
});
