/**
 * The capture process's life: a graceful stop leaves no child (q on stdin is enough), and an
 * agent killed with SIGKILL leaves no orphan ffmpeg (its stdout pipe into the in-process hub
 * breaks, and ffmpeg exits).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../../harness/tmp.ts';
import { onceWithin, quietFor, reached } from '../../harness/wait.ts';
import { testPatternService } from './service-fixture.ts';
import { TestClock } from '../../harness/test-clock.ts';

function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    // A zombie still has a /proc entry: state Z counts as gone-but-unreaped.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** True once the process has no /proc entry (reaped), looking for at most `ms`. */
function gone(pid: number, ms: number): Promise<boolean> {
  return reached(() => !existsSync(`/proc/${pid}`), ms);
}

test('stop() ends ffmpeg with q, quickly, and leaves no child or zombie', async () => {
  const tmp = makeTempDir('lenscap-life-');
  const s = testPatternService();
  try {
    await s.start();
    const pid = await onceWithin<number>(s.supervisorEvents, 'started', 30_000, 'capture started');
    assert.ok(alive(pid));
    const exited = onceWithin<{ signal: string | null }>(
      s.supervisorEvents,
      'exited',
      15_000,
      'capture exited',
    );
    const t0 = Date.now();
    await s.stop();
    const x = await exited;
    assert.equal(x.signal, null, 'ended by q (or, under load, SIGTERM), never SIGKILL');
    assert.ok(Date.now() - t0 < 4000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(await gone(pid, 1000), true, 'no process and no zombie');
  } finally {
    tmp.cleanup();
  }
});

test('an agent killed with SIGKILL leaves no orphan ffmpeg', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./capture-child.ts', import.meta.url))],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const line = await onceWithin<string>(
      createInterface({ input: child.stdout! }),
      'line',
      30_000,
      'the child to start capture',
    );
    const { pid } = JSON.parse(line) as { pid: number };
    assert.ok(alive(pid));
    child.kill('SIGKILL');
    assert.equal((await gone(pid, 5000)) || !alive(pid), true, `ffmpeg ${pid} outlived the agent`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('on demand: capture starts with the first lease and stops idleStopSeconds after the last', async () => {
  const tmp = makeTempDir('lenscap-demand-');
  // The idle stop runs on the test clock: "not before idleStopSeconds" is checked by moving it.
  const clock = new TestClock();
  const s = testPatternService({
    stream: { mode: 'on-demand', idleStopSeconds: 0.5 },
    width: 160,
    height: 90,
    clock,
  });
  try {
    await s.start();
    await clock.advance(60_000);
    assert.equal(s.capturePid(), undefined, 'idle: no capture process');
    const started = onceWithin<number>(
      s.supervisorEvents,
      'started',
      30_000,
      'capture started on the first lease',
    );
    const release = s.acquire();
    const pid = await started;
    const release2 = s.acquire();
    release();
    await clock.advance(60_000);
    assert.equal(s.capturePid(), pid, 'still held by the second lease');
    const exited = onceWithin(s.supervisorEvents, 'exited', 15_000, 'capture exited after the last lease');
    release2();
    await clock.advance(499);
    assert.equal(s.capturePid(), pid, 'not before idleStopSeconds');
    await clock.advance(1);
    await exited;
    assert.equal(await gone(pid, 2000), true);
  } finally {
    await s.stop();
    tmp.cleanup();
  }
});

test('a lease released after stop() starts no capture (a late viewer close must not relaunch ffmpeg)', async () => {
  const s = testPatternService();
  await s.start();
  await onceWithin<number>(s.supervisorEvents, 'started', 30_000, 'capture started');
  const release = s.acquire();
  await s.stop();
  let relaunched = 0;
  s.supervisorEvents.on('started', () => relaunched++);
  release();
  await quietFor(1500, 'a late release must launch no capture run');
  assert.equal(relaunched, 0, 'no capture run after stop()');
  assert.equal(s.capturePid(), undefined);
});
