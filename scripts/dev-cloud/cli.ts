/**
 * `lenscap-dev` entry point (bin/lenscap-dev.js runs it through tsx): the development verbs that
 * never ship on a camera. With no verb it runs the dev cloud; otherwise it finds the verb (the
 * longest matching word sequence) and runs it. Exit codes follow the same scheme as `lenscap`
 * (agent/cli/exit-codes.ts).
 * Must never let an error escape as a stack trace, and never be imported by device code.
 */
import { processIo, type CliIo } from '../../agent/cli/command.ts';
import { describeError, isLenscapError } from '../../agent/errors.ts';
import { EXIT } from '../../agent/cli/exit-codes.ts';
import { defaultCommand, devCommands } from './cli/registry.ts';

function usage(): string[] {
  return [
    'usage: lenscap-dev [options]          run the local development cloud',
    '       lenscap-dev <command> [options]',
    '',
    'commands:',
    ...devCommands.map((c) => `  ${c.name.padEnd(22)} ${c.summary}`),
    '',
    "Run `lenscap-dev --help` for the dev cloud's options, `lenscap-dev <command> --help` for a command's.",
  ];
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const hit = devCommands
    .map((c) => ({ c, words: c.name.split(' ') }))
    .filter(({ words }) => words.every((w, i) => argv[i] === w))
    .sort((a, b) => b.words.length - a.words.length)[0];
  // No verb: options (or nothing) run the dev cloud; a bare word that is no verb is a typo.
  if (!hit && argv[0] !== undefined && !argv[0].startsWith('-') && argv[0] !== 'help') {
    io.err(`ERR_CLI_USAGE: unknown command "${argv.join(' ')}"`);
    usage().forEach((l) => io.err(l));
    return 2;
  }
  const loader = hit?.c ?? defaultCommand;
  const rest = argv[0] === 'help' && !hit ? ['--help'] : argv.slice(hit ? hit.words.length : 0);
  const cmd = await loader.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(cmd.help);
    if (!hit)
      usage()
        .slice(2)
        .forEach((l) => io.out(l));
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    io.err(describeError(err));
    return isLenscapError(err, 'ERR_CLI_USAGE') ? EXIT.usage : EXIT.failed;
  }
}
