// systemd watchdog notifications through a real helper process standing in for systemd-notify
// (it records its arguments), with the environment systemd gives a service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createWatchdog, watchdogIntervalMs } from '../../agent/systemd/watchdog.ts';
import { createLogger, silentLogger } from '../../agent/log.ts';
import { service, ServiceRunner } from '../../agent/service.ts';
import { makeTempDir } from '../support/tmp.ts';
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('ping period is a quarter of WATCHDOG_USEC, and none for another pid', () => {
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), 7500);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '41' }, 42), 0);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 7500);
  assert.equal(watchdogIntervalMs({}, 42), 0);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'junk' }, 42), 0);
});

test('under systemd: READY, periodic WATCHDOG pings, STOPPING on stop', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const fake = fakeNotify(dir);
  const { logger } = capturingLogger();
  const wd = createWatchdog({
    logger,
    notifyBin: fake.bin,
    env: { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '1000000', PATH: process.env.PATH },
  });
  assert.equal(wd.enabled, true);
  assert.equal(wd.intervalMs, 250);
  await wd.start();
  await sleep(900);
  await wd.stop();
  const calls = fake.calls();
  assert.equal(calls[0], 'READY=1 STATUS=running');
  assert.ok(calls.filter((c) => c === 'WATCHDOG=1 READY=1').length >= 2, `pings: ${calls.join(' | ')}`);
  assert.equal(calls.at(-1), 'STOPPING=1');
  const n = calls.length;
  await sleep(400);
  assert.equal(fake.calls().length, n, 'no ping after stop');
});

test('without NOTIFY_SOCKET nothing is sent and nothing fails', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const fake = fakeNotify(dir);
  const { logger } = capturingLogger();
  const wd = createWatchdog({ logger, notifyBin: fake.bin, env: { WATCHDOG_USEC: '1000000' } });
  assert.equal(wd.enabled, false);
  await wd.start();
  await sleep(300);
  await wd.stop();
  assert.deepEqual(fake.calls(), []);
});

test('one failed service withholds the ping (the watchdog judges every service), and pings resume once it recovers', async () => {
  const { logger, lines } = capturingLogger();
  const calls: string[] = [];
  let tick: (() => void) | undefined;
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
    setInterval: (fn) => {
      tick = fn;
      return { unref() {} } as unknown as NodeJS.Timeout;
    },
    clearInterval: () => (tick = undefined),
    env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '1000000' },
  });
  await wd.start();
  const pings = () => calls.filter((c) => c.startsWith('WATCHDOG=1')).length;
  tick!();
  await Promise.resolve();
  assert.equal(pings(), 1, 'all healthy: ping');
  streamOk = false;
  tick!();
  tick!();
  await Promise.resolve();
  assert.equal(pings(), 1, 'stream unhealthy: no ping');
  const withheld = lines.filter((l) => l.code === 'WATCHDOG_WITHHELD');
  assert.equal(withheld.length, 2);
  assert.deepEqual(withheld[0]!.failing, [{ name: 'stream', detail: 'hub not running' }]);
  streamOk = true;
  tick!();
  await Promise.resolve();
  assert.equal(pings(), 2, 'recovered: pings again');
  // A stopped service is no longer judged; one that throws from health() counts as failed.
  await runner.stop();
  assert.equal(runner.health().ok, true);
  await wd.stop();
  assert.equal(tick, undefined);
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

test('without a watchdog period READY=1 is still repeated, and stop cancels it', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const fake = fakeNotify(dir);
  const { logger } = capturingLogger();
  const wd = createWatchdog({
    logger,
    notifyBin: fake.bin,
    env: { NOTIFY_SOCKET: '@x', PATH: process.env.PATH },
  });
  assert.equal(wd.intervalMs, 0);
  await wd.start();
  await sleep(1400);
  assert.deepEqual(fake.calls(), ['READY=1 STATUS=running', 'READY=1']);
  await wd.stop();
  await sleep(100);
  assert.equal(fake.calls().at(-1), 'STOPPING=1');
});

test('a missing helper is logged once, never thrown', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const { logger, lines } = capturingLogger();
  const wd = createWatchdog({
    logger,
    notifyBin: join(dir, 'no-such-helper'),
    env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '1000000' },
  });
  await wd.start();
  await sleep(700);
  await wd.stop();
  assert.equal(lines.filter((l) => l.code === 'WATCHDOG_NOTIFY_FAILED').length, 1);
});
