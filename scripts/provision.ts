/**
 * `tsx scripts/provision.ts ...` = `lenscap provision ...`, for factory scripts that call a file.
 * Holds no logic: the verb is agent/cli/provision.ts.
 */
import { describeError } from '../agent/errors.ts';
import { processIo } from '../agent/cli/command.ts';
import { provisionCommand } from '../agent/cli/provision.ts';

provisionCommand.run(process.argv.slice(2), processIo).then(
  (code) => process.exit(code),
  (err) => {
    processIo.err(describeError(err));
    process.exit(1);
  },
);
