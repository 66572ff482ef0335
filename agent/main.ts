/**
 * `lenscap` entry point: finds the verb (the longest matching word sequence) and runs it.
 * Holds no logic of its own. Never lets an error escape as a stack trace: bad input gets a coded
 * one-line message and a non-zero exit.
 */
import { commands } from './cli/registry.ts';
import { processIo, type CliIo } from './cli/command.ts';
import { describeError, isLenscapError } from './errors.ts';
import { EXIT } from './cli/exit-codes.ts';
import { DEV_ALIAS, devBinPath, runDevAlias } from './cli/dev-alias.ts';

export async function main(
  argv: string[],
  io: CliIo = processIo,
  devBin: string | null = devBinPath(),
): Promise<number> {
  // The old name of the development verbs, in a checkout only (a bundle has no lenscap-dev).
  if (argv[0] === DEV_ALIAS && devBin) return runDevAlias(devBin, argv.slice(1), io);
  const candidates = commands
    .map((c) => ({ c, words: c.name.split(' ') }))
    .filter(({ words }) => words.every((w, i) => argv[i] === w))
    .sort((a, b) => b.words.length - a.words.length);
  const hit = candidates[0];
  if (!hit) {
    const wantsHelp = argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help';
    const lines = [
      'usage: lenscap <command> [options]',
      '',
      'commands:',
      ...commands.map((c) => `  ${c.name.padEnd(22)} ${c.summary}`),
      ...(devBin ? [`  ${DEV_ALIAS.padEnd(22)} (source checkout only) old name of \`lenscap-dev\`.`] : []),
      '',
      "Run `lenscap <command> --help` for a command's options.",
    ];
    if (wantsHelp) {
      lines.forEach((l) => io.out(l));
      return 0;
    }
    io.err(`ERR_CLI_USAGE: unknown command "${argv.join(' ')}"`);
    lines.forEach((l) => io.err(l));
    return 2;
  }
  const cmd = await hit.c.load();
  const rest = argv.slice(hit.words.length);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    io.err(describeError(err));
    return isLenscapError(err, 'ERR_CLI_USAGE') ? EXIT.usage : EXIT.failed;
  }
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      processIo.err(describeError(err));
      process.exitCode = 1;
    },
  );
}
