// The generic service runner (agent/service.ts): start in order, stop in exact reverse, a failed
// start stops what already started, a failing stop does not skip the rest, stop is idempotent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../agent/log.ts';
import { ServiceRunner, type Service } from '../../agent/service.ts';

function recorder() {
  const seen: string[] = [];
  const make = (name: string, opts: { failStart?: boolean; failStop?: boolean } = {}): Service => ({
    name,
    async start() {
      if (opts.failStart) throw new Error(`${name} cannot start`);
      seen.push(`start ${name}`);
    },
    async stop() {
      seen.push(`stop ${name}`);
      if (opts.failStop) throw new Error(`${name} cannot stop`);
    },
    health: () => ({ ok: true }),
  });
  return { seen, make };
}

test('starts in order and stops in the exact reverse, once', async () => {
  const { seen, make } = recorder();
  const observed: string[] = [];
  const run = new ServiceRunner(silentLogger(), (phase, name) => observed.push(`${phase} ${name}`));
  await run.startAll([make('a'), make('b'), make('c')]);
  assert.deepEqual(run.names(), ['a', 'b', 'c']);
  await Promise.all([run.stop(), run.stop()]);
  await run.stop();
  assert.deepEqual(seen, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  assert.deepEqual(observed, ['started a', 'started b', 'started c', 'stopped c', 'stopped b', 'stopped a']);
  assert.deepEqual(run.names(), []);
  await assert.rejects(run.start(make('late')), /runner stopped/);
});

test('a failed start stops what already started, in reverse, and rethrows', async () => {
  const { seen, make } = recorder();
  const run = new ServiceRunner(silentLogger());
  await assert.rejects(
    run.startAll([make('a'), make('b'), make('c', { failStart: true }), make('d')]),
    /c cannot start/,
  );
  assert.deepEqual(seen, ['start a', 'start b', 'stop b', 'stop a']);
});

test('a stop that throws is logged and the rest still stop', async () => {
  const { seen, make } = recorder();
  const run = new ServiceRunner(silentLogger());
  await run.startAll([make('a'), make('b', { failStop: true }), make('c')]);
  await run.stop();
  assert.deepEqual(seen.slice(3), ['stop c', 'stop b', 'stop a']);
});
