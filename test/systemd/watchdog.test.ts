// systemd watchdog notifications through a real helper process standing in for systemd-notify
// (it records its arguments), with the environment systemd gives a service. The ping period runs
// on the manual test clock (harness/test-clock.ts): the counts below are exact, not "at least
// after a sleep", and no test waits real time for a timer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createWatchdog, watchdogIntervalMs, type NotifyExec } from '../../agent/systemd/watchdog.ts';
import { createLogger, silentLogger } from '../../agent/log.ts';
import { service, ServiceRunner } from '../../agent/service.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { PassThrough } from 'node:stream';

function fakeNotify(dir: string): { bin: string; calls: () => string[] } {
  const bin = join(dir, 'systemd-notify');
  const log = join(dir, 'calls.log');
  writeFileSync(bin, `#!/bin/sh\n[ -n "$NOTIFY_SOCKET" ] || exit 3\necho "$*" >> ${JSON.stringify(log)}\n`);
  chmodSync(bin, 0o755);
  return {
    bin,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []),
  };
}

/** Runs the helper for real (as the agent does) and lets the test wait for every run to finish. */
function realExec(): { exec: NotifyExec; settle: () => Promise<void> } {
  const runs: Promise<unknown>[] = [];
  const exec: NotifyExec = (file, args, env) => {
    const run = new Promise<void>((resolve, reject) =>
      execFile(file, args, { env, timeout: 5000 }, (err) => (err ? reject(err) : resolve())),
    );
    runs.push(run.catch(() => {}));
    return run;
  };
  return { exec, settle: async () => void (await Promise.all(runs)) };
}

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on('data', (b: Buffer) =>
    b
      .toString()
      .split('\n')
      .filter(Boolean)
      .forEach((l) => lines.push(JSON.parse(l))),
  );
  return { logger: createLogger({ level: 'debug', destination: stream }), lines };
}

test('ping period is a quarter of WATCHDOG_USEC, and none for another pid', () => {
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), 7500);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '41' }, 42), 0);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 7500);
  assert.equal(watchdogIntervalMs({}, 42), 0);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'junk' }, 42), 0);
});

test('under systemd: READY, one WATCHDOG ping per period, STOPPING on stop, none after', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const fake = fakeNotify(dir);
  const { exec, settle } = realExec();
  const clock = new TestClock();
  const wd = createWatchdog({
    logger: silentLogger(),
    notifyBin: fake.bin,
    exec,
    clock,
    env: { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '1000000', PATH: process.env.PATH },
  });
  assert.equal(wd.enabled, true);
  assert.equal(wd.intervalMs, 250);
  await wd.start();
  await clock.advance(900);
  await settle();
  await wd.stop();
  await settle();
  assert.deepEqual(fake.calls(), [
    'READY=1 STATUS=running',
    'WATCHDOG=1 READY=1',
    'WATCHDOG=1 READY=1',
    'WATCHDOG=1 READY=1',
    'STOPPING=1',
  ]);
  assert.equal(clock.timers, 0, 'stop cleared the interval');
  await clock.advance(10_000);
  await settle();
  assert.equal(fake.calls().length, 5, 'no ping after stop');
});

test('without NOTIFY_SOCKET nothing is sent, nothing is scheduled and nothing fails', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const fake = fakeNotify(dir);
  const clock = new TestClock();
  const wd = createWatchdog({
    logger: silentLogger(),
    notifyBin: fake.bin,
    clock,
    env: { WATCHDOG_USEC: '1000000' },
  });
  assert.equal(wd.enabled, false);
  await wd.start();
  assert.equal(clock.timers, 0);
  await clock.advance(10_000);
  await wd.stop();
  assert.deepEqual(fake.calls(), []);
});

test('one failed service withholds the ping (the watchdog judges every service), and pings resume once it recovers', async () => {
  const { logger, lines } = capturingLogger();
  const calls: string[] = [];
  const clock = new TestClock();
  const runner = new ServiceRunner(silentLogger());
  let streamOk = true;
  await runner.startAll([
    service('event-queue', {}),
    service('stream', { health: () => (streamOk ? { ok: true } : { ok: false, detail: 'hub not running' }) }),
    service('gate', {}),
  ]);
  const wd = createWatchdog({
    logger,
    exec: async (_file, args) => void calls.push(args.join(' ')),
    health: () => runner.health(),
    clock,
    env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '1000000' },
  });
  await wd.start();
  const pings = () => calls.filter((c) => c.startsWith('WATCHDOG=1')).length;
  await clock.advance(250);
  assert.equal(pings(), 1, 'all healthy: ping');
  streamOk = false;
  await clock.advance(500);
  assert.equal(pings(), 1, 'stream unhealthy: no ping');
  const withheld = lines.filter((l) => l.code === 'WATCHDOG_WITHHELD');
  assert.equal(withheld.length, 2);
  assert.deepEqual(withheld[0]!.failing, [{ name: 'stream', detail: 'hub not running' }]);
  streamOk = true;
  await clock.advance(250);
  assert.equal(pings(), 2, 'recovered: pings again');
  // A stopped service is no longer judged.
  await runner.stop();
  assert.equal(runner.health().ok, true);
  await wd.stop();
  assert.equal(clock.timers, 0);
  assert.equal(calls.at(-1), 'STOPPING=1');
});

test('a health check that throws counts as unhealthy', async () => {
  const runner = new ServiceRunner(silentLogger());
  await runner.start({
    name: 'bad',
    start: async () => {},
    stop: async () => {},
    health: () => {
      throw new Error('boom');
    },
  });
  assert.deepEqual(runner.health(), {
    ok: false,
    failing: [{ name: 'bad', detail: 'health check threw: boom' }],
  });
});

test('without a watchdog period READY=1 is repeated at 1, 5 and 15 s, and stop cancels the rest', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const fake = fakeNotify(dir);
  const { exec, settle } = realExec();
  const clock = new TestClock();
  const wd = createWatchdog({
    logger: silentLogger(),
    notifyBin: fake.bin,
    exec,
    clock,
    env: { NOTIFY_SOCKET: '@x', PATH: process.env.PATH },
  });
  assert.equal(wd.intervalMs, 0);
  await wd.start();
  await clock.advance(999);
  await settle();
  assert.deepEqual(fake.calls(), ['READY=1 STATUS=running']);
  await clock.advance(4001);
  await settle();
  assert.deepEqual(fake.calls(), ['READY=1 STATUS=running', 'READY=1', 'READY=1']);
  await wd.stop();
  await clock.advance(60_000);
  await settle();
  assert.deepEqual(fake.calls(), ['READY=1 STATUS=running', 'READY=1', 'READY=1', 'STOPPING=1']);
});

test('a missing helper is logged once, never thrown', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const { logger, lines } = capturingLogger();
  const { exec, settle } = realExec();
  const clock = new TestClock();
  const wd = createWatchdog({
    logger,
    notifyBin: join(dir, 'no-such-helper'),
    exec,
    clock,
    env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '1000000' },
  });
  await wd.start();
  for (let i = 0; i < 3; i++) {
    await clock.advance(250);
    await settle();
  }
  await wd.stop();
  await settle();
  assert.equal(lines.filter((l) => l.code === 'WATCHDOG_NOTIFY_FAILED').length, 1);
});
