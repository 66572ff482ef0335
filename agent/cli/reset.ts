/**
 * `lenscap reset`: the local factory reset (root only). Clears the owner and the cloud's binding
 * on disk and leaves a request the running agent carries out at once (sessions cut, camera
 * unclaimed); an agent that is not running carries it out at its next start. The label's claim
 * code stays valid: the owner (or a new one) claims again with it. Holds no logic of its own.
 */
import { rmSync } from 'node:fs';
import { LenscapError } from '../errors.ts';
import { clearOwnerState } from '../owner/owner-store.ts';
import { requestReset } from '../owner/reset.ts';
import { stateLayout } from '../state-layout.ts';
import { parseOptions, type Command } from './command.ts';

const DEFAULT_STATE_DIR = '/var/lib/lenscap';

export const resetCommand: Command = {
  name: 'reset',
  summary: 'Factory reset: forget the owner (root only; takes effect at once).',
  help: `usage: lenscap reset --yes [--state-dir DIR]

Forgets this camera's owner, its owner-signed membership and the cloud's binding record: the
camera is unclaimed at once (a running agent cuts every viewer session and push within a fraction
of a second) and refuses every grant until it is claimed again with the label's claim code.
Root only (exit 1 with ERR_RESET_NOT_ROOT otherwise). DIR defaults to $LENSCAP_STATE_DIR, else
${DEFAULT_STATE_DIR}. A lost owner key is recovered exactly this way: reset, then claim again.`,
  async run(argv, io) {
    const { values } = parseOptions(argv, { yes: { type: 'boolean' }, 'state-dir': { type: 'string' } });
    if (values.help) {
      io.out(this.help);
      return 0;
    }
    if (process.getuid?.() !== 0)
      throw new LenscapError(
        'ERR_RESET_NOT_ROOT',
        'lenscap reset must run as root (it is a local, physical-access operation)',
      );
    if (!values.yes)
      throw new LenscapError('ERR_CLI_USAGE', 'a factory reset forgets the owner: add --yes to confirm');
    const paths = stateLayout(values['state-dir'] ?? process.env.LENSCAP_STATE_DIR ?? DEFAULT_STATE_DIR);
    const had = clearOwnerState(paths);
    rmSync(paths.binding, { force: true });
    requestReset(paths, 'lenscap reset');
    io.out(
      `reset: ${had ? 'owner forgotten' : 'no owner was recorded'}; binding cleared; a running agent cuts every session now. Claim again with the label's code.`,
    );
    return 0;
  },
};
