/**
 * `lenscap-dev view`: what a viewer's phone sends to watch an owner-held camera — a grant bound to
 * its key and a DPoP proof for the gate URL — printed as the two headers and a ready curl line.
 */
import { LenscapError } from '../../../agent/errors.ts';
import { parseOptions, type Command } from '../../../agent/cli/command.ts';

export const devViewCommand: Command = {
  name: 'view',
  summary: 'Mint a key-bound grant and print it with its DPoP proof (the exact request).',
  help: `usage: lenscap-dev view --serial S --viewer V --gate URL [--ttl 300] [--dev-dir DIR]

Mints a grant for viewer V on camera S (bound to V's key from the relayed owner-signed
membership, cnf.jkt), signs a DPoP proof with V's key (DIR/phones/V/signing.key.pem, created 0600
on first use) for GET URL/live/S.flv, and prints:
  Authorization: Bearer <grant>
  DPoP: <proof>
  curl -sN -H 'Authorization: …' -H 'DPoP: …' URL/live/S.flv
A proof is single-use and valid for owner.dpopWindowSeconds (60 s): run it again for each request.
DIR defaults to ./.lenscap/dev. Development only.`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      serial: { type: 'string' },
      viewer: { type: 'string' },
      gate: { type: 'string' },
      ttl: { type: 'string' },
      'dev-dir': { type: 'string' },
    });
    if (!values.serial || !values.viewer || !values.gate)
      throw new LenscapError('ERR_CLI_USAGE', '--serial, --viewer and --gate are required');
    const ttl = values.ttl === undefined ? 300 : Number(values.ttl);
    if (!Number.isInteger(ttl) || ttl <= 0)
      throw new LenscapError('ERR_CLI_USAGE', `--ttl must be a positive number of seconds`);
    let gate: URL;
    try {
      gate = new URL(values.gate);
    } catch {
      throw new LenscapError('ERR_CLI_USAGE', `--gate must be a URL such as https://127.0.0.1:8443`);
    }
    const { join } = await import('node:path');
    const { loadOrCreateSigningKeys } = await import('../signing-keys.ts');
    const { mintGrant } = await import('../mint.ts');
    const { memberJkt } = await import('../memberships.ts');
    const { loadOrCreatePhoneKeys, makeDpopProof } = await import('../owner-phone.ts');
    const devDir = values['dev-dir'] ?? '.lenscap/dev';
    const keys = await loadOrCreateSigningKeys(devDir);
    const phone = loadOrCreatePhoneKeys(join(devDir, 'phones'), values.viewer);
    const jkt = memberJkt(devDir, values.serial, values.viewer);
    const { token } = mintGrant(keys.issuer, {
      serial: values.serial,
      viewer: values.viewer,
      ttlSeconds: ttl,
      ...(jkt ? { jkt } : {}),
    });
    const url = `${gate.origin}/live/${encodeURIComponent(values.serial)}.flv`;
    const proof = makeDpopProof(phone, { htm: 'GET', htu: url, token });
    if (!jkt)
      io.err(
        `note: no relayed membership lists ${values.viewer} on ${values.serial}: the grant has no cnf.jkt (plays only on a legacy-mode camera)`,
      );
    io.out(`Authorization: Bearer ${token}`);
    io.out(`DPoP: ${proof}`);
    io.out(`curl -skN -H 'Authorization: Bearer ${token}' -H 'DPoP: ${proof}' ${url}`);
    return 0;
  },
};
