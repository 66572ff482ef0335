import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config/load.ts';
import {
  CONFIG_VERSION,
  ConfigVersionProblem,
  configMigrations,
  migrateConfig,
  type ConfigMigration,
} from '../../agent/config/migrations.ts';
import { main } from '../../agent/main.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { makeTempDir } from '../../harness/tmp.ts';

// A config file as written before config versions existed (version 0): no `version` key.
const VERSION_0_FILE = {
  stateDir: '/var/lib/lenscap',
  log: { level: 'info' },
  camera: { driver: 'v4l2', device: '/dev/video0', width: 640, height: 360, fps: 15 },
  gate: { host: '0.0.0.0', port: 8443, tls: true },
  stream: { mode: 'on-demand' },
};

function write(dir: string, body: unknown): string {
  const file = join(dir, 'agent.json');
  writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
}

test('a version-0 file (no `version`) loads, keeps its values and is reported as migrated', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const loaded = loadConfig(write(dir, VERSION_0_FILE), {});
  assert.equal(loaded.config.version, CONFIG_VERSION);
  assert.equal(loaded.config.gate.port, 8443);
  assert.equal(loaded.config.camera.device, '/dev/video0');
  assert.deepEqual(loaded.migrated, {
    from: 0,
    to: CONFIG_VERSION,
    applied: configMigrations.map((m) => `${m.from}→${m.to}: ${m.summary}`),
  });
});

test('a current-version file and the built-in defaults are not reported as migrated', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  assert.equal(
    loadConfig(write(dir, { ...VERSION_0_FILE, version: CONFIG_VERSION }), {}).migrated,
    undefined,
  );
  const defaults = loadConfig(undefined, {});
  assert.equal(defaults.migrated, undefined);
  assert.equal(defaults.config.version, CONFIG_VERSION);
});

test('`lenscap config check` on a version-0 file prints the migration and the migrated config', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(['config', 'check', write(dir, VERSION_0_FILE)], {
    out: (l) => stdout.push(l),
    err: (l) => stderr.push(l),
  });
  assert.equal(code, 0);
  assert.match(
    stderr.join('\n'),
    new RegExp(`^migrated: config version 0 → ${CONFIG_VERSION} \\(0→1: `, 'm'),
  );
  assert.equal(JSON.parse(stdout.join('\n')).version, CONFIG_VERSION);
});

test('a newer or malformed version is refused with ERR_CONFIG_VERSION naming what is wrong', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  for (const [version, pattern] of [
    [CONFIG_VERSION + 1, /is version \d+, this agent reads versions 0 to \d+/],
    ['1', /expected a non-negative integer \(found "1"\)/],
    [-1, /expected a non-negative integer \(found -1\)/],
    [1.5, /expected a non-negative integer \(found 1\.5\)/],
  ] as const) {
    let caught: unknown;
    try {
      loadConfig(write(dir, { version }), {});
    } catch (err) {
      caught = err;
    }
    assert.ok(isLenscapError(caught), `version ${JSON.stringify(version)} refused with a coded error`);
    assert.equal(caught.code, 'ERR_CONFIG_VERSION');
    assert.match(caught.message, pattern);
  }
});

test('the migrations form one chain from 0 to CONFIG_VERSION', () => {
  assert.deepEqual(
    configMigrations.map((m) => [m.from, m.to]),
    Array.from({ length: CONFIG_VERSION }, (_, i) => [i, i + 1]),
  );
});

test('a renamed key in a later version: an old file is carried over, step by step', () => {
  // The shape a real rename takes (gate.port → gate.listenPort in a hypothetical next version).
  const next = CONFIG_VERSION + 1;
  const chain: ConfigMigration[] = [
    ...configMigrations,
    {
      from: CONFIG_VERSION,
      to: next,
      summary: 'gate.port is now gate.listenPort',
      migrate: (raw) => {
        const { port, ...gate } = (raw.gate ?? {}) as Record<string, unknown>;
        return { ...raw, gate: port === undefined ? gate : { ...gate, listenPort: port } };
      },
    },
  ];
  const result = migrateConfig({ gate: { port: 8443, tls: true } }, next, chain);
  assert.ok(!(result instanceof ConfigVersionProblem));
  assert.deepEqual(result.raw, { version: next, gate: { listenPort: 8443, tls: true } });
  assert.equal(result.from, 0);
  assert.equal(result.applied.length, next);

  const gap = migrateConfig({ version: 0 }, 2, [chain[1]!]);
  assert.ok(gap instanceof ConfigVersionProblem);
  assert.match(gap.message, /no migration from version 0 to 1/);
});

test('a version-1 file with the hub ports (gone: the hub has no listener) loads, without them, as migrated', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const v1 = {
    ...VERSION_0_FILE,
    version: 1,
    stream: { mode: 'always', hubRtmpPort: 1935, hubHttpPort: 8000, idleStopSeconds: 5 },
  };
  const loaded = loadConfig(write(dir, v1), {});
  assert.equal(loaded.config.version, CONFIG_VERSION);
  assert.equal(loaded.config.stream.mode, 'always');
  assert.equal(loaded.config.stream.idleStopSeconds, 5);
  assert.equal('hubRtmpPort' in loaded.config.stream, false);
  assert.equal('hubHttpPort' in loaded.config.stream, false);
  assert.match(loaded.migrated?.applied.join('\n') ?? '', /^1→2: drops `stream\.hubRtmpPort`/m);
  // The key itself is gone from the schema: a current-version file naming it is refused by name.
  assert.throws(
    () => loadConfig(write(dir, { ...v1, version: CONFIG_VERSION }), {}),
    (e: unknown) => isLenscapError(e) && /hubRtmpPort/.test((e as Error).message),
  );
});
