/**
 * The owner's events switch survives an agent restart: `cmd/events` through the real command
 * dispatcher saves it crash-safe; the whole agent (controller, real ffmpeg test pattern) started
 * again takes the saved switch over config's `events.enabled`, both ways; an unreadable switch
 * file keeps events off (fail closed, ERR_EVENTS_COMMAND logged); a factory reset forgets it; a
 * switch that cannot be saved is applied anyway and answered ERR_EVENTS_COMMAND.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { ManualClock } from '../../agent/clock.ts';
import { CommandRegistry, createCommandDispatcher } from '../../agent/cloud/commands.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { startAgent } from '../../agent/controller.ts';
import { registerEventsCommands } from '../../agent/events/commands.ts';
import type { EventsStatus } from '../../agent/events/service.ts';
import { enabledAtStart, openEventsSwitch, parseSwitch } from '../../agent/events/switch.ts';
import { createLogger, silentLogger } from '../../agent/log.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { requestReset } from '../../agent/owner/reset.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { makeTestPki } from '../../harness/pki.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-SWITCH-1';

function dispatcherWith(file: string, configEnabled = false) {
  const registry = new CommandRegistry();
  const calls: boolean[] = [];
  const sw = openEventsSwitch({ file, configEnabled, logger: silentLogger() });
  registerEventsCommands(
    registry,
    {
      setEnabled: (on) => {
        calls.push(on);
        return { enabled: on } as EventsStatus;
      },
    },
    { switch: sw, clock: new ManualClock(Date.UTC(2026, 11, 3)) },
  );
  const d = createCommandDispatcher({
    registry,
    serial: SERIAL,
    maxBytes: 4096,
    logger: silentLogger(),
    events: new MemoryEventSink(),
    clock: new ManualClock(0),
  });
  const send = (id: string, enabled: boolean) =>
    d.dispatch('events', Buffer.from(JSON.stringify({ id, enabled })));
  return { send, calls, sw };
}

test('the switch: saved by cmd/events, crash-safe, and what the next start reads', async () => {
  const { dir, cleanup } = makeTempDir('lenscap-switch-');
  try {
    const file = join(dir, 'events', 'switch.json');
    const first = dispatcherWith(file, false);
    assert.equal(first.sw.initial, false);
    assert.equal(first.sw.source, 'config');
    assert.equal((await first.send('e1', true))?.status, 'ok');
    assert.deepEqual(first.calls, [true]);
    // Written by rename: no temp file left beside it.
    assert.deepEqual(readdirSync(join(dir, 'events')), ['switch.json']);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), {
      v: 1,
      enabled: true,
      by: 'cloud',
      at: '2026-12-03T00:00:00.000Z',
    });
    // "Restart": config says off, the owner said on.
    const second = dispatcherWith(file, false);
    assert.equal(second.sw.initial, true);
    assert.equal(second.sw.source, 'saved');
    await second.send('e2', false);
    // A crash mid-write of a later save leaves a temp file behind: the saved switch still reads.
    writeFileSync(join(dir, 'events', '.switch.json.dead.tmp'), '{"v":1,"enab');
    assert.equal(dispatcherWith(file, true).sw.initial, false, 'config on, the owner said off');
  } finally {
    cleanup();
  }
});

test('the switch: unreadable means off; a failed save is applied and answered ERR_EVENTS_COMMAND', async () => {
  assert.equal(enabledAtStart(true, { kind: 'none' }), true);
  assert.equal(enabledAtStart(false, { kind: 'none' }), false);
  for (const bad of [
    '',
    'null',
    '{"v":1,"enabled":"yes","by":"x","at":"y"}',
    '{"v":2,"enabled":true}',
    '[',
  ]) {
    assert.equal(parseSwitch(bad).kind, 'unreadable', bad);
    assert.equal(enabledAtStart(true, parseSwitch(bad)), false, `fail closed on ${JSON.stringify(bad)}`);
  }
  const { dir, cleanup } = makeTempDir('lenscap-switch-bad-');
  try {
    // The events dir is a file: nothing can be saved under it.
    writeFileSync(join(dir, 'events'), 'not a directory');
    const d = dispatcherWith(join(dir, 'events', 'switch.json'), true);
    const r = await d.send('e1', false);
    assert.equal(r?.status, 'error');
    assert.equal(r?.error?.code, 'ERR_EVENTS_COMMAND');
    assert.match(r?.error?.message ?? '', /off now, but the switch was not saved/);
    assert.deepEqual(d.calls, [false], 'applied even though it could not be saved');
  } finally {
    cleanup();
  }
});

async function provisionedState(dir: string) {
  const pki = makeTestPki(dir, [SERIAL]);
  const keys = await loadOrCreateSigningKeys(join(dir, 'dev'));
  const paths = stateLayout(join(dir, 'state'));
  for (const d of [paths.root, paths.identityDir, paths.cloudDir, paths.trustDir, paths.eventsDir])
    mkdirSync(d, { recursive: true, mode: 0o700 });
  chmodSync(paths.root, 0o700);
  chmodSync(paths.identityDir, 0o700);
  const device = pki.devices.get(SERIAL)!;
  writeFileSync(paths.deviceKey, device.key, { mode: 0o600 });
  writeFileSync(paths.deviceCert, device.cert);
  writeFileSync(paths.chain, '');
  writeFileSync(paths.deviceCa, pki.caPem);
  writeFileSync(paths.brokerCa, pki.serverCaPem);
  writeFileSync(paths.trustRoot, JSON.stringify(keys.trustRootJwk));
  writeFileSync(paths.trustBundle, keys.trustBundle);
  writeFileSync(
    paths.binding,
    signBindingRecord(keys.binding, { serial: SERIAL, owner: 'alice', version: 1 }),
  );
  return paths;
}

/** Starts the whole agent (no cloud) and returns its log lines as of the moment it is up. */
async function startOnce(stateDir: string, eventsEnabled: boolean): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ destination });
  const agent = await startAgent(
    configSchema.parse({
      stateDir,
      gate: { host: '127.0.0.1', port: 0, tls: true },
      stream: { mode: 'on-demand' },
      camera: { driver: 'testpattern', width: 160, height: 90, fps: 5 },
      events: { enabled: eventsEnabled },
    }),
    { logger, env: {} },
  );
  // Every service's start() has returned, and the events side decides (and logs) inside its
  // start(): a marker logged now arrives after whatever the start logged, on the same ordered stream.
  logger.info('test: the agent is up');
  await waitUntil(() => lines.some((l) => l.msg === 'test: the agent is up'), 5000, 'the marker line');
  const seen = [...lines];
  await agent.stop('test');
  return seen;
}

const started = (lines: Array<Record<string, unknown>>) =>
  lines.some((l) => l.component === 'events' && l.msg === 'motion detection started');

test(
  'the whole agent starts with the owner’s saved events switch over config, both ways; unreadable → off',
  { timeout: 90_000 },
  async () => {
    const { dir, cleanup } = makeTempDir('lenscap-switch-agent-');
    try {
      const paths = await provisionedState(dir);
      assert.equal(started(await startOnce(paths.root, false)), false, 'config off, nothing saved: off');
      // What cmd/events saved before the restart.
      writeFileSync(paths.eventsSwitch, JSON.stringify({ v: 1, enabled: true, by: 'cloud', at: 'x' }));
      assert.equal(started(await startOnce(paths.root, false)), true, 'saved on beats config off');
      writeFileSync(paths.eventsSwitch, JSON.stringify({ v: 1, enabled: false, by: 'cloud', at: 'x' }));
      assert.equal(started(await startOnce(paths.root, true)), false, 'saved off beats config on');
      writeFileSync(paths.eventsSwitch, '{"v":1,"enabled":tr');
      const lines = await startOnce(paths.root, true);
      assert.equal(started(lines), false, 'unreadable switch: off');
      assert.ok(
        lines.some((l) => l.code === 'ERR_EVENTS_COMMAND'),
        'and said why',
      );
      // A factory reset (here `lenscap reset` before the start) forgets the last owner's switch.
      writeFileSync(paths.eventsSwitch, JSON.stringify({ v: 1, enabled: true, by: 'cloud', at: 'x' }));
      requestReset(paths, 'test');
      assert.equal(started(await startOnce(paths.root, false)), false, 'after a reset config applies');
      assert.equal(existsSync(paths.eventsSwitch), false, 'the switch file is gone');
    } finally {
      cleanup();
    }
  },
);
