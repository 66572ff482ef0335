/**
 * Config format versions and the migrations between them. The schema is strict (an unknown key is
 * an error), so a key renamed in a later agent would make an updated camera refuse its old file;
 * instead each format change adds one migration here, and load.ts runs the chain on the raw file
 * before validation. A file without `version` is version 0 (every file written before versions).
 * Pure: takes and returns plain JSON objects. Must never read files or the environment, nor drop a
 * key silently (a migration renames or converts, or drops a key that no longer means anything and
 * says so in its summary; whatever it cannot place stays for the schema to reject by name).
 */

/** The format this agent writes and validates. Bump it together with a new migration below. */
export const CONFIG_VERSION = 2;

export interface ConfigMigration {
  /** The version this migration reads. */
  from: number;
  /** The version it produces: always `from + 1`. */
  to: number;
  /** One line for the log and docs/config.md: what changed for someone holding an old file. */
  summary: string;
  /** Returns the migrated object (without `version`; the runner sets it). */
  migrate(raw: Record<string, unknown>): Record<string, unknown>;
}

export const configMigrations: readonly ConfigMigration[] = [
  {
    from: 0,
    to: 1,
    summary: 'adds `version` (a file without it is version 0); no key changed',
    migrate: (raw) => raw,
  },
  {
    from: 1,
    to: 2,
    summary:
      'drops `stream.hubRtmpPort` and `stream.hubHttpPort`: the media hub has no listener (capture writes to a pipe)',
    migrate: (raw) => {
      const stream = raw.stream;
      if (!stream || typeof stream !== 'object' || Array.isArray(stream)) return raw;
      const { hubRtmpPort: _rtmp, hubHttpPort: _http, ...rest } = stream as Record<string, unknown>;
      return { ...raw, stream: rest };
    },
  },
];

export interface MigrationResult {
  raw: Record<string, unknown>;
  /** The file's version as read (0 when absent). */
  from: number;
  to: number;
  /** Summaries of the migrations applied, in order; empty when the file was current. */
  applied: string[];
}

/** Why a version cannot be migrated; load.ts turns it into ERR_CONFIG_VERSION. */
export class ConfigVersionProblem {
  constructor(readonly message: string) {}
}

/**
 * Runs the migrations from the file's version up to `current`. Returns a ConfigVersionProblem
 * (never throws) for a version that is not a non-negative integer, one newer than this agent
 * reads, or one no chain of migrations reaches from.
 */
export function migrateConfig(
  input: Record<string, unknown>,
  current: number = CONFIG_VERSION,
  migrations: readonly ConfigMigration[] = configMigrations,
): MigrationResult | ConfigVersionProblem {
  const declared = input.version;
  if (
    declared !== undefined &&
    (typeof declared !== 'number' || !Number.isInteger(declared) || declared < 0)
  ) {
    return new ConfigVersionProblem(
      `version: expected a non-negative integer (found ${JSON.stringify(declared)})`,
    );
  }
  const from = declared ?? 0;
  if (from > current) {
    return new ConfigVersionProblem(
      `version: the file is version ${from}, this agent reads versions 0 to ${current} (update the agent, or write the file for version ${current})`,
    );
  }
  let raw: Record<string, unknown> = structuredClone(input);
  delete raw.version;
  const applied: string[] = [];
  for (let v = from; v < current; v++) {
    const step = migrations.find((m) => m.from === v && m.to === v + 1);
    if (!step) return new ConfigVersionProblem(`version: no migration from version ${v} to ${v + 1}`);
    raw = step.migrate(raw);
    applied.push(`${step.from}→${step.to}: ${step.summary}`);
  }
  return { raw: { version: current, ...raw }, from, to: current, applied };
}
