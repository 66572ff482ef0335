/**
 * `lenscap run`: load and validate the config, hand over to the controller, and stop it cleanly
 * on SIGTERM/SIGINT (systemd, init scripts and Ctrl-C). Holds no logic of its own.
 */
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../log.ts';
import { parseOptions, type Command } from './command.ts';

export const runCommand: Command = {
  name: 'run',
  summary: 'Run the agent.',
  help: `usage: lenscap run [--config FILE]

Runs the agent: checks the identity in the state dir, then serves the viewer gate, keeps the
cloud link up and supervises capture. FILE defaults to $LENSCAP_CONFIG, else built-in defaults.
Stops cleanly on SIGTERM or SIGINT (closes sessions, stops ffmpeg, publishes offline, flushes the
audit log). Exit codes: 0 clean stop, 1 failed to start (the message names the problem).`,
  async run(argv, io) {
    const { values } = parseOptions(argv, { config: { type: 'string', short: 'c' } });
    const file = values.config ?? process.env.LENSCAP_CONFIG;
    const { config, warnings, migrated } = loadConfig(file);
    const logger = createLogger({ level: config.log.level, pretty: config.log.pretty });
    if (migrated) {
      logger.warn(
        { code: 'CONFIG_MIGRATED', from: migrated.from, to: migrated.to, steps: migrated.applied },
        `config file is version ${migrated.from}; migrated at load to version ${migrated.to}`,
      );
    }
    for (const w of warnings) logger.warn({ code: 'CONFIG_ENV_UNKNOWN' }, w);
    const { startAgent } = await import('../controller.ts');
    const agent = await startAgent(config, { logger });
    io.err(`lenscap ${agent.serial}: running; gate ${agent.gateUrl}`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        logger.info({ signal }, 'stopping');
        agent.stop(signal).then(resolve, (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          resolve();
        });
      };
      const onTerm = () => stop('SIGTERM');
      const onInt = () => stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
    });
    return 0;
  },
};
