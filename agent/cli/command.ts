/**
 * The shape of one `lenscap` verb. Each verb lives in its own file under agent/cli/ and is listed
 * in agent/cli/registry.ts. Verbs parse arguments and hand over to a service; they hold no logic
 * of their own. They return an exit code rather than calling process.exit, so tests can run them.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LenscapError } from '../errors.ts';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** One line, ending in exactly one newline whatever the message carries (never glued to what follows). */
export function asLine(line: string): string {
  return line.endsWith('\n') ? line : line + '\n';
}

/** The one place CLI output and error lines reach the terminal. */
export const processIo: CliIo = {
  out: (line) => process.stdout.write(asLine(line)),
  err: (line) => process.stderr.write(asLine(line)),
};

export interface Command {
  /** Words after `lenscap`, e.g. "config check". */
  name: string;
  summary: string;
  /** Full help text printed by `--help`. */
  help: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/**
 * node:util parseArgs with strict checking, turning its errors into a coded error that names the
 * bad option, so every verb reports bad input the same way.
 */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals,
    });
  } catch (err) {
    throw new LenscapError('ERR_CLI_USAGE', (err as Error).message);
  }
}
