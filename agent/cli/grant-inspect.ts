/** `lenscap grant inspect TOKEN`: every check of one grant, pass/fail, for field engineers. */
import { readFileSync } from 'node:fs';
import { systemClock } from '../clock.ts';
import { loadConfig } from '../config/load.ts';
import { LenscapError } from '../errors.ts';
import { inspectGrant } from '../grants/inspect.ts';
import { readSerialFromCert } from '../identity/serial.ts';
import { stateLayout } from '../state-layout.ts';
import { parseOptions, type Command } from './command.ts';
import { EXIT } from './exit-codes.ts';

export const grantInspectCommand: Command = {
  name: 'grant inspect',
  summary: 'Decode a grant and show every check.',
  help: `usage: lenscap grant inspect TOKEN|- [--config FILE] [--state-dir DIR] [--serial S] [--purpose view|push]

Decodes the grant (use "-" to read it from stdin, which keeps it out of shell history) and runs
every check this camera would run, printing pass/fail for each and the refusal reason. The grant
is not consumed and no event is sent. Exit 0 when it would be accepted, 3 when refused.`,
  async run(argv, io) {
    const { values, positionals } = parseOptions(
      argv,
      {
        config: { type: 'string', short: 'c' },
        'state-dir': { type: 'string' },
        serial: { type: 'string' },
        purpose: { type: 'string' },
        json: { type: 'boolean' },
      },
      true,
    );
    if (positionals.length !== 1)
      throw new LenscapError('ERR_CLI_USAGE', 'expected exactly one TOKEN (or - for stdin)');
    const token = positionals[0] === '-' ? readFileSync(0, 'utf8').trim() : positionals[0]!;
    const purpose = values.purpose ?? 'view';
    if (purpose !== 'view' && purpose !== 'push')
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--purpose must be view or push, found ${JSON.stringify(purpose)}`,
      );
    const { config } = loadConfig(values.config);
    const paths = stateLayout(values['state-dir'] ?? config.stateDir);
    const serial = values.serial ?? config.serial ?? readSerialFromCert(paths.deviceCert);
    if (!serial)
      throw new LenscapError(
        'ERR_NO_SERIAL',
        `no serial: pass --serial, set "serial" in the config, or point --state-dir at a provisioned camera`,
      );
    const report = inspectGrant(token, { serial, config, paths, clock: systemClock, purpose });
    if (values.json) {
      io.out(JSON.stringify(report, null, 2));
    } else {
      io.out(`camera   ${serial}`);
      io.out(`header   ${JSON.stringify(report.header)}`);
      io.out(`claims   ${JSON.stringify(report.claims)}`);
      for (const c of report.checks)
        io.out(`  ${c.result === 'pass' ? 'pass' : c.result === 'fail' ? 'FAIL' : '  - '}  ${c.check}`);
      for (const n of report.notes) io.out(`note     ${n}`);
      io.out(
        report.decision.ok
          ? 'result   ACCEPT'
          : `result   REFUSE ${report.decision.reason}: ${report.decision.detail}`,
      );
    }
    return report.decision.ok ? EXIT.ok : EXIT.refused;
  },
};
