/**
 * `lenscap dev-cloud …` in a source checkout: the old name of the development verbs, kept as an
 * alias. The verbs themselves live in the development-only `lenscap-dev` bin (scripts/dev-cloud/),
 * which device code must not import, so the alias runs that bin as a child process with the same
 * arguments and passes on its output and exit code. A device bundle carries neither the bin nor
 * scripts/, so there the alias does not exist and `lenscap --help` lists device verbs only.
 * Must never import anything under scripts/.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { processIo, type CliIo } from './command.ts';

export const DEV_ALIAS = 'dev-cloud';

/** The lenscap-dev launcher when this tree is a checkout that has one (agent/cli → ../../bin). */
export function devBinPath(
  root: string = fileURLToPath(new URL('../../', import.meta.url)),
  exists: (p: string) => boolean = existsSync,
): string | null {
  const bin = `${root}bin/lenscap-dev.js`;
  return exists(bin) && exists(`${root}scripts/dev-cloud/cli.ts`) ? bin : null;
}

function lineSplitter(emit: (line: string) => void) {
  let buf = '';
  return {
    push(chunk: Buffer) {
      buf += chunk.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        emit(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
    end() {
      if (buf) emit(buf);
      buf = '';
    },
  };
}

/**
 * Runs `lenscap-dev ARGS` as a child and resolves with its exit code. On the process's own
 * streams the child writes straight through (byte for byte); with another io (tests) its output is
 * passed on line by line. SIGINT/SIGTERM/SIGHUP reaching this process are passed to the child
 * (its own process group, so a terminal's Ctrl-C reaches it once, through here).
 */
export function runDevAlias(bin: string, args: string[], io: CliIo = processIo): Promise<number> {
  io.err(
    `note: \`lenscap ${DEV_ALIAS}\` is now \`lenscap-dev\` (run \`npx lenscap-dev …\`); this alias works in a checkout only`,
  );
  const direct = io === processIo;
  const child = spawn(process.execPath, [bin, ...args], {
    stdio: ['ignore', direct ? 'inherit' : 'pipe', direct ? 'inherit' : 'pipe'],
    detached: true,
  });
  const out = lineSplitter(io.out);
  const err = lineSplitter(io.err);
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => err.push(d));
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const forward = (sig: NodeJS.Signals) => () => void child.kill(sig);
  const handlers = signals.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve) => {
    const done = (code: number) => {
      for (const [s, h] of handlers) process.off(s, h);
      out.end();
      err.end();
      resolve(code);
    };
    child.once('error', (e) => {
      io.err(`ERR_DEV_ALIAS: could not start ${bin}: ${e.message}`);
      done(1);
    });
    child.once('close', (code, signal) =>
      done(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 0)),
    );
  });
}
