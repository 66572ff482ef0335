/** `lenscap config check FILE`: validate a config and print it resolved (secrets redacted), or every error. */
import { loadConfig, redactConfig } from '../config/load.ts';
import { parseOptions, type Command } from './command.ts';

export const configCheckCommand: Command = {
  name: 'config check',
  summary: 'Validate a config file and print the resolved config.',
  help: `usage: lenscap config check FILE

Validates FILE against the config schema, applies LENSCAP_* environment overrides and prints the
resolved config as JSON (secrets redacted). A file of an older config version is migrated first
and reported on stderr ("migrated: config version 0 → 1 …"). On error, prints every problem with its key path and
exits 1. Keys and defaults: docs/config.md.`,
  async run(argv, io) {
    const { positionals } = parseOptions(argv, {}, true);
    if (positionals.length !== 1) {
      io.err('ERR_CLI_USAGE: expected exactly one FILE (see --help)');
      return 2;
    }
    const { config, warnings, fromEnv, migrated } = loadConfig(positionals[0]);
    if (migrated) {
      io.err(`migrated: config version ${migrated.from} → ${migrated.to} (${migrated.applied.join('; ')})`);
    }
    for (const w of warnings) io.err(`warning: ${w}`);
    if (fromEnv.length) io.err(`from environment: ${fromEnv.join(', ')}`);
    io.out(JSON.stringify(redactConfig(config), null, 2));
    return 0;
  },
};
