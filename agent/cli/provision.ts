/**
 * `lenscap provision`: gives this camera its identity (factory or field). Parses arguments and
 * hands over to agent/identity/provision.ts. Must never print the private key or the whole token.
 */
import { readFileSync } from 'node:fs';
import { systemClock } from '../clock.ts';
import { LenscapError } from '../errors.ts';
import { provisionDevice } from '../identity/provision.ts';
import { parseOptions, type Command } from './command.ts';

const DEFAULT_STATE_DIR = '/var/lib/lenscap';

export const provisionCommand: Command = {
  name: 'provision',
  summary: 'Give this camera its identity (factory or field).',
  help: `usage: lenscap provision --serial SERIAL --url https://HOST:PORT --token TOKEN --ca FILE
                        [--state-dir DIR] [--force] [--key-size 2048|3072]

Makes an RSA key on this camera (it never leaves the device), sends a CSR with the one-time
TOKEN to the provisioning service at URL (trusting only the CA in FILE), verifies the device
certificate, the CAs and the trust bundle it gets back, and installs them in DIR (default
$LENSCAP_STATE_DIR, else ${DEFAULT_STATE_DIR}) atomically: key 0600, directories 0700.
Prints one line per step. Safe to re-run: a valid identity is left alone (--force replaces it),
and a run interrupted by a power cut is finished or started clean (the same token works again).
Exit codes: 0 provisioned or already provisioned, 1 failed (the line names the code and the fix).
Codes: ERR_PROVISION_TOKEN_INVALID / _EXPIRED / _USED, ERR_PROVISION_SERIAL_NOT_ALLOWED,
ERR_PROVISION_UNREACHABLE, ERR_PROVISION_TLS, ERR_PROVISION_CLOCK_SKEW, ERR_PROVISION_DISK_FULL,
ERR_PROVISION_ALREADY (valid identity for another serial), ERR_PROVISION_VERIFY_FAILED.`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      serial: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      ca: { type: 'string' },
      'state-dir': { type: 'string' },
      force: { type: 'boolean' },
      'key-size': { type: 'string' },
    });
    if (values.help) {
      io.out(this.help);
      return 0;
    }
    for (const k of ['serial', 'url', 'token', 'ca'] as const) {
      if (!values[k])
        throw new LenscapError('ERR_CLI_USAGE', `--${k} is required (see lenscap provision --help)`);
    }
    let caPem: string;
    try {
      caPem = readFileSync(values.ca!, 'utf8');
    } catch (err) {
      throw new LenscapError(
        'ERR_PROVISION_USAGE',
        `cannot read --ca ${values.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (!caPem.includes('BEGIN CERTIFICATE'))
      throw new LenscapError('ERR_PROVISION_USAGE', `--ca ${values.ca} holds no PEM certificate`);
    const keySize = values['key-size'] === undefined ? 2048 : Number(values['key-size']);
    await provisionDevice({
      serial: values.serial!,
      url: values.url!,
      token: values.token!,
      caPem,
      stateDir: values['state-dir'] ?? process.env.LENSCAP_STATE_DIR ?? DEFAULT_STATE_DIR,
      force: values.force ?? false,
      keySize,
      clock: systemClock,
      out: io.out,
    });
    return 0;
  },
};
