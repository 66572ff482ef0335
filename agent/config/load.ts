/**
 * Reads the one config file, applies `LENSCAP_*` environment overrides (one key each) and
 * validates the result against the schema. Every problem is reported at once, naming the key path,
 * what was expected and what was found; nothing starts on a bad config.
 * Must never read any file but the config file, nor print secrets.
 */
import { readFileSync } from 'node:fs';
import { LenscapError } from '../errors.ts';
import { configFields, type ConfigField } from './fields.ts';
import { ConfigVersionProblem, migrateConfig } from './migrations.ts';
import { configSchema, SECRET_KEYS, type Config } from './schema.ts';

export interface LoadedConfig {
  config: Config;
  /** `LENSCAP_*` variables that named no config key (likely typos). */
  warnings: string[];
  /** Keys set from the environment. */
  fromEnv: string[];
  /** Set when the file was an older config version and was migrated in memory at load. */
  migrated?: { from: number; to: number; applied: string[] };
}

/** Variables the test harness and launchers use; not config keys. */
const RESERVED_ENV = /^LENSCAP_(TEST|CONFIG$|DEV_)/;

export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let raw: unknown = {};
  let migrated: LoadedConfig['migrated'];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new LenscapError(
        'ERR_CONFIG_READ',
        `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { file },
      );
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new LenscapError(
        'ERR_CONFIG_JSON',
        `config file ${file} is not valid JSON: ${(err as Error).message}`,
        { file },
      );
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new LenscapError(
        'ERR_CONFIG_INVALID',
        `config file ${file}: expected a JSON object at the top level, found ${Array.isArray(raw) ? 'an array' : typeof raw}`,
        { file },
      );
    }
    const result = migrateConfig(raw as Record<string, unknown>);
    if (result instanceof ConfigVersionProblem) {
      throw new LenscapError('ERR_CONFIG_VERSION', `config file ${file}: ${result.message}`, { file });
    }
    raw = result.raw;
    if (result.applied.length > 0) migrated = { from: result.from, to: result.to, applied: result.applied };
  }
  const { merged, fromEnv, warnings, problems } = applyEnv(raw as Record<string, unknown>, env);
  const result = configSchema.safeParse(merged, { reportInput: true });
  const issues = [...problems, ...(result.success ? [] : result.error.issues.map(formatIssue))];
  if (issues.length > 0 || !result.success) {
    throw new LenscapError(
      'ERR_CONFIG_INVALID',
      `invalid config${file ? ` (${file})` : ''}:\n${issues.map((i) => `  - ${i}`).join('\n')}`,
      { file, issues },
    );
  }
  return { config: result.data, warnings, fromEnv, ...(migrated ? { migrated } : {}) };
}

function formatIssue(issue: {
  path: PropertyKey[];
  message: string;
  code: string;
  input?: unknown;
  keys?: string[];
}): string {
  const path = issue.path.map(String).join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return `${path}: unknown key${(issue.keys?.length ?? 0) > 1 ? 's' : ''} ${issue.keys?.map((k) => `"${k}"`).join(', ')}`;
  }
  const found = issue.input === undefined ? 'nothing' : JSON.stringify(redactIfSecret(path, issue.input));
  return `${path}: ${issue.message.replace(/^Invalid input: /, '')} (found ${found})`;
}

function redactIfSecret(path: string, value: unknown): unknown {
  return SECRET_KEYS.has(path) ? '[redacted]' : value;
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv) {
  const merged = structuredClone(raw);
  const byEnv = new Map(
    configFields()
      .filter((f) => f.env)
      .map((f) => [f.env, f]),
  );
  const fromEnv: string[] = [];
  const warnings: string[] = [];
  const problems: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('LENSCAP_') || value === undefined || RESERVED_ENV.test(name)) continue;
    const field = byEnv.get(name);
    if (!field) {
      warnings.push(`${name} names no config key; ignored`);
      continue;
    }
    const parsed = parseEnvValue(field, value);
    if (!parsed.ok) {
      problems.push(`${field.path} (from ${name}): ${parsed.error} (found ${JSON.stringify(value)})`);
      continue;
    }
    setPath(merged, field.path.split('.'), parsed.value);
    fromEnv.push(field.path);
  }
  return { merged, fromEnv, warnings, problems };
}

function parseEnvValue(
  field: ConfigField,
  value: string,
): { ok: true; value: unknown } | { ok: false; error: string } {
  switch (field.kind) {
    case 'number': {
      const n = Number(value);
      return value.trim() !== '' && Number.isFinite(n)
        ? { ok: true, value: n }
        : { ok: false, error: 'expected a number' };
    }
    case 'boolean':
      if (value === 'true' || value === '1') return { ok: true, value: true };
      if (value === 'false' || value === '0') return { ok: true, value: false };
      return { ok: false, error: 'expected true/false' };
    case 'array':
      if (value.trim().startsWith('[')) {
        try {
          return { ok: true, value: JSON.parse(value) };
        } catch {
          return { ok: false, error: 'expected a JSON array or a comma-separated list' };
        }
      }
      return { ok: true, value: value === '' ? [] : value.split(',').map((s) => s.trim()) };
    default:
      return { ok: true, value };
  }
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/** The resolved config for printing, with secret values replaced. */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as Record<string, unknown>;
  for (const key of SECRET_KEYS) {
    const parts = key.split('.');
    let cur: Record<string, unknown> | undefined = copy;
    for (const p of parts.slice(0, -1)) cur = cur?.[p] as Record<string, unknown> | undefined;
    const last = parts[parts.length - 1]!;
    if (cur && cur[last] !== undefined) cur[last] = '[redacted]';
  }
  return copy;
}
