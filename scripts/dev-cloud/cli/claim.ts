/**
 * `lenscap-dev claim`: a user's simulated phone claims a camera with its label code, through the
 * running dev cloud (which only relays): nonce from the camera, HMAC proof over the phone's key,
 * membership v1 signed by that key. Development only.
 */
import { LenscapError } from '../../../agent/errors.ts';
import { EXIT } from '../../../agent/cli/exit-codes.ts';
import { parseOptions, type Command } from '../../../agent/cli/command.ts';
import { CameraRefusal, callCloud, cloudUrl, readStack } from './phone-api.ts';

export const devClaimCommand: Command = {
  name: 'claim',
  summary: "Claim a camera with its label code, as the user's simulated phone.",
  help: `usage: lenscap-dev claim --serial S --user U [--code C] [--cloud URL] [--dev-dir DIR]

Claims camera S for user U with the label's claim code C (default: S's code in the running
stack's stack.json), as U's phone: keys in DIR/phones/U/ (dir 0700, private keys 0600, created on
first use). The dev cloud at URL (default: the running stack's page) relays the nonce and the
claim; the code never leaves this process (only the HMAC proof does).
Exit 0 claimed, 3 the camera refused (its code on stderr, e.g. ERR_CLAIM_WRONG_PROOF,
ERR_CLAIM_ALREADY_CLAIMED, ERR_CLAIM_LOCKED), 1 the tool failed, 2 usage.
DIR defaults to ./.lenscap/dev. Development only.`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      serial: { type: 'string' },
      user: { type: 'string' },
      code: { type: 'string' },
      cloud: { type: 'string' },
      'dev-dir': { type: 'string' },
    });
    if (!values.serial || !values.user)
      throw new LenscapError('ERR_CLI_USAGE', '--serial and --user are required');
    const devDir = values['dev-dir'] ?? '.lenscap/dev';
    const code =
      values.code ?? readStack(devDir)?.cameras?.find((c) => c.serial === values.serial)?.claimCode;
    if (!code)
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `no claim code for ${values.serial}: pass --code (the label's code)`,
      );
    const { join } = await import('node:path');
    const { parseClaimCode } = await import('../../../agent/owner/claim-code.ts');
    const { loadOrCreatePhoneKeys, makeClaim } = await import('../owner-phone.ts');
    try {
      parseClaimCode(code);
    } catch (err) {
      throw new LenscapError('ERR_CLI_USAGE', `--code: ${(err as Error).message}`);
    }
    const base = cloudUrl(devDir, values.cloud);
    const phone = loadOrCreatePhoneKeys(join(devDir, 'phones'), values.user);
    try {
      // The phone's public keys go to the cloud's directory (so the owner can add this user elsewhere).
      // (Best effort: the dev directory knows the demo users only.)
      await callCloud(base, '/api/keys', { user: values.user, jwk: phone.jwk, hpke: phone.hpke }).catch(
        () => undefined,
      );
      const { nonce } = (await callCloud(base, '/api/claim/nonce', { serial: values.serial })) as {
        nonce: string;
      };
      const claim = makeClaim(phone, { code, serial: values.serial, nonce });
      const r = await callCloud(base, '/api/claim', { serial: values.serial, ...claim });
      io.out(
        `claimed ${values.serial} for ${values.user} (membership v${String(r.version)}, owner key ${phone.jkt})`,
      );
      return EXIT.ok;
    } catch (err) {
      if (!(err instanceof CameraRefusal)) throw err;
      io.err(`${err.code}: ${values.serial} refused the claim: ${err.message}`);
      return EXIT.refused;
    }
  },
};
