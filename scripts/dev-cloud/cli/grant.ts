/** `lenscap-dev grant`: mint a viewer grant with the dev cloud's issuer key; prints the token alone. */
import { LenscapError } from '../../../agent/errors.ts';
import { parseOptions, type Command } from '../../../agent/cli/command.ts';

export const devCloudGrantCommand: Command = {
  name: 'grant',
  summary: 'Mint a viewer grant (prints the token alone).',
  help: `usage: lenscap-dev grant --serial S --viewer V [--ttl 300] [--scope live] [--relay URL] [--dev-dir DIR]

Mints a grant signed by the development cloud's issuer key and prints only the token on stdout,
so scripts can pipe it. For an owner-held camera the grant carries cnf.jkt, the viewer's key from
the owner-signed membership the cloud relayed (DIR/memberships/S.json); it plays only with a DPoP
proof by that key (\`lenscap-dev view\` prints both). --relay makes a push-mode grant. DIR defaults to ./.lenscap/dev.
Development only: a real cloud issues grants from its own service.`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      serial: { type: 'string' },
      viewer: { type: 'string' },
      ttl: { type: 'string' },
      scope: { type: 'string' },
      relay: { type: 'string' },
      'dev-dir': { type: 'string' },
    });
    if (!values.serial || !values.viewer)
      throw new LenscapError('ERR_CLI_USAGE', '--serial and --viewer are required');
    const ttl = values.ttl === undefined ? 300 : Number(values.ttl);
    if (!Number.isInteger(ttl) || ttl <= 0)
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--ttl must be a positive number of seconds, found ${JSON.stringify(values.ttl)}`,
      );
    const { loadOrCreateSigningKeys } = await import('../signing-keys.ts');
    const { mintGrant } = await import('../mint.ts');
    const { memberJkt } = await import('../memberships.ts');
    const devDir = values['dev-dir'] ?? '.lenscap/dev';
    const keys = await loadOrCreateSigningKeys(devDir);
    // Owner-held camera: the grant names the viewer's key from the owner's membership (cnf.jkt).
    const jkt = memberJkt(devDir, values.serial, values.viewer);
    const { token } = mintGrant(keys.issuer, {
      ...(jkt ? { jkt } : {}),
      serial: values.serial,
      viewer: values.viewer,
      ttlSeconds: ttl,
      ...(values.scope ? { scope: values.scope } : {}),
      ...(values.relay ? { relay: values.relay } : {}),
    });
    io.out(token);
    return 0;
  },
};
