/** `lenscap-dev bind`: sign a binding record (claims a camera for an owner and viewers). */
import { writeFileSync } from 'node:fs';
import { LenscapError } from '../../../agent/errors.ts';
import { parseOptions, type Command } from '../../../agent/cli/command.ts';

export const devCloudBindCommand: Command = {
  name: 'bind',
  summary: 'Sign a binding record (claims a camera for an owner).',
  help: `usage: lenscap-dev bind --serial S --owner V [--viewer W ...] [--version N] [--out FILE] [--dev-dir DIR]

Signs a binding record {serial, owner, viewers, version, iat} with the development cloud's
binding key and prints it (or writes it to FILE). Deliver it to the camera with the cloud's
\`binding\` command. Versions must grow; the default is the current time in milliseconds.`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      serial: { type: 'string' },
      owner: { type: 'string' },
      viewer: { type: 'string', multiple: true },
      version: { type: 'string' },
      out: { type: 'string' },
      'dev-dir': { type: 'string' },
    });
    if (!values.serial || !values.owner)
      throw new LenscapError('ERR_CLI_USAGE', '--serial and --owner are required');
    const version = values.version === undefined ? undefined : Number(values.version);
    if (version !== undefined && (!Number.isInteger(version) || version <= 0))
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--version must be a positive integer, found ${JSON.stringify(values.version)}`,
      );
    const { loadOrCreateSigningKeys } = await import('../signing-keys.ts');
    const { signBindingRecord } = await import('../mint.ts');
    const keys = await loadOrCreateSigningKeys(values['dev-dir'] ?? '.lenscap/dev');
    const jws = signBindingRecord(keys.binding, {
      serial: values.serial,
      owner: values.owner,
      viewers: values.viewer ?? [],
      ...(version ? { version } : {}),
    });
    if (values.out) writeFileSync(values.out, jws + '\n');
    else io.out(jws);
    return 0;
  },
};
