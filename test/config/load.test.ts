import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config/load.ts';
import { renderConfigDocs } from '../../agent/config/docs.ts';
import { configFields } from '../../agent/config/fields.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { makeTempDir } from '../../harness/tmp.ts';

function writeConfig(dir: string, body: string): string {
  const file = join(dir, 'agent.json');
  writeFileSync(file, body);
  return file;
}

function configError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(isLenscapError(err), `expected a LenscapError, got ${String(err)}`);
    return { code: err.code, message: err.message };
  }
  assert.fail('expected an error');
}

test('an empty config resolves to the documented defaults', () => {
  const { config } = loadConfig(undefined, {});
  assert.equal(config.stateDir, '/var/lib/lenscap');
  assert.equal(config.grants.maxLifetimeSeconds, 600);
  assert.deepEqual(config.grants.algorithms, ['EdDSA']);
  assert.equal(config.cloud.backoff.capMs, 120000);
  assert.equal(config.gate.allowQueryToken, false);
});

test('file values and LENSCAP_* overrides are applied, one key each', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const file = writeConfig(dir, JSON.stringify({ stateDir: '/tmp/x', gate: { port: 9000 } }));
  const { config, fromEnv } = loadConfig(file, {
    LENSCAP_GATE_PORT: '9443',
    LENSCAP_CLOUD_BACKOFF_BASE_MS: '250',
    LENSCAP_GATE_VIEWER_ORIGINS: 'http://a,http://b',
    LENSCAP_LOG_PRETTY: 'true',
  });
  assert.equal(config.stateDir, '/tmp/x');
  assert.equal(config.gate.port, 9443);
  assert.equal(config.cloud.backoff.baseMs, 250);
  assert.deepEqual(config.gate.viewerOrigins, ['http://a', 'http://b']);
  assert.equal(config.log.pretty, true);
  assert.deepEqual(fromEnv.sort(), ['cloud.backoff.baseMs', 'gate.port', 'gate.viewerOrigins', 'log.pretty']);
});

test('errors name the key path, what was expected and what was found — all at once', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const file = writeConfig(
    dir,
    JSON.stringify({
      gate: { port: 'eighty', bogus: 1 },
      cloud: { url: 'http://broker' },
      grants: { algorithms: ['HS256'] },
    }),
  );
  const err = configError(() => loadConfig(file, {}));
  assert.equal(err.code, 'ERR_CONFIG_INVALID');
  assert.match(err.message, /gate\.port: expected number, received string \(found "eighty"\)/);
  assert.match(err.message, /gate: unknown key "bogus"/);
  assert.match(err.message, /cloud\.url: an mqtts:\/\/ URL/);
  assert.match(err.message, /grants\.algorithms\.0/);
});

test('a bad environment override is an error naming the variable', () => {
  const err = configError(() => loadConfig(undefined, { LENSCAP_GATE_PORT: 'abc' }));
  assert.equal(err.code, 'ERR_CONFIG_INVALID');
  assert.match(err.message, /gate\.port \(from LENSCAP_GATE_PORT\): expected a number \(found "abc"\)/);
});

test('an unknown LENSCAP_ variable is reported as a warning, not silently used', () => {
  const { warnings } = loadConfig(undefined, { LENSCAP_GATE_PROT: '1' });
  assert.deepEqual(warnings, ['LENSCAP_GATE_PROT names no config key; ignored']);
});

test('unreadable, non-JSON and non-object files get their own codes', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  assert.equal(configError(() => loadConfig(join(dir, 'missing.json'), {})).code, 'ERR_CONFIG_READ');
  assert.equal(configError(() => loadConfig(writeConfig(dir, '{"gate": '), {})).code, 'ERR_CONFIG_JSON');
  assert.equal(configError(() => loadConfig(writeConfig(dir, '[1,2]'), {})).code, 'ERR_CONFIG_INVALID');
});

test('every key has a description and a unique env name', () => {
  const fields = configFields();
  assert.ok(fields.length > 30);
  for (const f of fields) assert.ok(f.description.length > 0, `${f.path} has no description`);
  assert.equal(new Set(fields.map((f) => f.env)).size, fields.length);
});

test('docs/config.md is in sync with the schema (run `npm run docs:config`)', () => {
  const committed = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  assert.equal(committed, renderConfigDocs());
});
