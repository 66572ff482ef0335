/**
 * `lenscap-dev member add|remove`: the owner's simulated phone signs the next membership of a
 * camera (adding or removing a viewer) and the running dev cloud relays it; the camera accepts it
 * only if the key that signed it is the current owner's. Development only.
 */
import { LenscapError } from '../../../agent/errors.ts';
import { EXIT } from '../../../agent/cli/exit-codes.ts';
import { parseOptions, type Command, type CliIo } from '../../../agent/cli/command.ts';
import { CameraRefusal, callCloud, cloudUrl, relayedMembership } from './phone-api.ts';
import { keyCode } from '../key-code.ts';

const USAGE_OPTS = '--serial S --owner U --user V [--cloud URL] [--dev-dir DIR]';

async function change(op: 'add' | 'remove', argv: string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(argv, {
    serial: { type: 'string' },
    owner: { type: 'string' },
    user: { type: 'string' },
    role: { type: 'string' },
    keys: { type: 'string' },
    cloud: { type: 'string' },
    'dev-dir': { type: 'string' },
  });
  if (!values.serial || !values.owner || !values.user)
    throw new LenscapError('ERR_CLI_USAGE', '--serial, --owner and --user are required');
  const role = values.role ?? 'viewer';
  if (role !== 'viewer')
    throw new LenscapError('ERR_CLI_USAGE', '--role must be viewer (ownership moves by a transfer)');
  const keySource = values.keys ?? 'phone';
  if (keySource !== 'phone' && keySource !== 'directory')
    throw new LenscapError('ERR_CLI_USAGE', '--keys must be phone or directory');
  if (op === 'remove' && values.user === values.owner)
    throw new LenscapError('ERR_CLI_USAGE', 'the owner cannot remove themselves (transfer instead)');
  const devDir = values['dev-dir'] ?? '.lenscap/dev';
  const { join } = await import('node:path');
  const { loadOrCreatePhoneKeys, signMembership, memberOf } = await import('../owner-phone.ts');
  const phones = join(devDir, 'phones');
  const base = cloudUrl(devDir, values.cloud);
  const owner = loadOrCreatePhoneKeys(phones, values.owner);
  try {
    const cur = await relayedMembership(base, values.serial);
    let members = cur.members.filter((m) => m.sub !== values.user);
    if (op === 'add') {
      let entry: Record<string, unknown>;
      if (keySource === 'phone') {
        // V's own simulated phone (created on first use), registered with the directory.
        const v = loadOrCreatePhoneKeys(phones, values.user);
        await callCloud(base, '/api/keys', { user: values.user, jwk: v.jwk, hpke: v.hpke }).catch(
          () => undefined, // best effort: the dev directory knows the demo users only
        );
        entry = { ...memberOf(v, 'viewer') };
      } else {
        const pub = await callCloud(base, `/api/keys?user=${encodeURIComponent(values.user)}`);
        entry = { sub: values.user, role: 'viewer', jwk: pub.jwk, hpke: pub.hpke };
        io.err(
          `note: ${values.user}'s key from the cloud's directory: key code ${keyCode(String(pub.jkt))}, thumbprint ${String(pub.jkt)} (compare it with their device's "Your keys")`,
        );
      }
      members = [...members, entry];
    } else if (members.length === cur.members.length) {
      throw new LenscapError('ERR_CLI_USAGE', `${values.user} is not a member of ${values.serial}`);
    }
    const jws = signMembership(owner, {
      serial: values.serial,
      epoch: cur.epoch,
      version: cur.version + 1,
      members: members as never,
    });
    await callCloud(base, '/api/membership', { serial: values.serial, membership: jws });
    io.out(
      `${op === 'add' ? 'added' : 'removed'} ${values.user} ${op === 'add' ? 'to' : 'from'} ${values.serial} (membership v${cur.version + 1}, signed by ${values.owner})`,
    );
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof CameraRefusal)) throw err;
    io.err(`${err.code}: ${values.serial} refused the membership: ${err.message}`);
    return EXIT.refused;
  }
}

const help = (
  op: 'add' | 'remove',
) => `usage: lenscap-dev member ${op} ${USAGE_OPTS}${op === 'add' ? ' [--role viewer] [--keys phone|directory]' : ''}

As owner U's simulated phone (DIR/phones/U/, 0600 keys), signs camera S's next membership
${
  op === 'add'
    ? `with V added as a viewer — V's keys from V's own simulated phone (DIR/phones/V/, made on
first use; --keys phone, the default) or what V registered with the cloud (--keys directory,
e.g. V's browser)`
    : 'without V'
} — and sends it through the dev cloud at URL (default: the running
stack's page), which only relays it. The camera accepts it only if U's key is the current owner's.
Exit 0 done, 3 the camera refused (its code on stderr, e.g. ERR_MEMBERSHIP_NOT_OWNER), 1 the tool
failed (e.g. ERR_NOT_CLAIMED), 2 usage. DIR defaults to ./.lenscap/dev. Development only.`;

export const devMemberAddCommand: Command = {
  name: 'member add',
  summary: "Add a viewer to a camera's membership, signed by the owner's simulated phone.",
  help: help('add'),
  run: (argv, io) => change('add', argv, io),
};

export const devMemberRemoveCommand: Command = {
  name: 'member remove',
  summary: "Remove a viewer from a camera's membership, signed by the owner's simulated phone.",
  help: help('remove'),
  run: (argv, io) => change('remove', argv, io),
};
