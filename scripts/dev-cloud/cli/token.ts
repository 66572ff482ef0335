/**
 * `lenscap-dev token`: a fresh one-time provisioning token for one serial, printed alone on
 * stdout (scripts pipe it). The running dev cloud sees it at once (one file per token).
 * Development only: a real cloud issues tokens from its own factory service.
 */
import { LenscapError } from '../../../agent/errors.ts';
import { parseOptions, type Command } from '../../../agent/cli/command.ts';

export const devCloudTokenCommand: Command = {
  name: 'token',
  summary: 'Print a one-time provisioning token.',
  help: `usage: lenscap-dev token --serial CAM-0001 [--ttl SECONDS] [--dev-dir DIR]

Creates a one-time provisioning token bound to SERIAL, valid for SECONDS (default 3600), and prints
only the token. Give it to \`lenscap provision --token\` on that camera: it works once, for that
serial only. DIR is the dev cloud's state (default ./.lenscap/dev); the token itself is not stored
there, only its SHA-256.`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      serial: { type: 'string' },
      ttl: { type: 'string' },
      'dev-dir': { type: 'string' },
    });
    if (!values.serial) throw new LenscapError('ERR_CLI_USAGE', '--serial is required');
    const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
    if (!Number.isInteger(ttl) || ttl <= 0)
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--ttl must be a positive number of seconds, found ${JSON.stringify(values.ttl)}`,
      );
    const { createToken } = await import('../tokens.ts');
    const { DEFAULT_DEV_DIR } = await import('../layout.ts');
    io.out(await createToken(values['dev-dir'] ?? DEFAULT_DEV_DIR, values.serial, ttl));
    return 0;
  },
};
