/**
 * `lenscap-dev member add|remove|transfer`: the owner's simulated phone signs the next membership
 * of a camera (adding or removing a viewer, or naming another user's key as owner) and the running
 * dev cloud relays it; the camera accepts it only if the key that signed it is the current
 * owner's. After a transfer only the new owner's key signs. Development only.
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

/** `member transfer`: the current owner U signs a membership naming V's key as owner. */
async function transfer(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(argv, {
    serial: { type: 'string' },
    owner: { type: 'string' },
    to: { type: 'string' },
    keep: { type: 'boolean' },
    keys: { type: 'string' },
    cloud: { type: 'string' },
    'dev-dir': { type: 'string' },
  });
  if (!values.serial || !values.owner || !values.to)
    throw new LenscapError('ERR_CLI_USAGE', '--serial, --owner and --to are required');
  if (values.to === values.owner)
    throw new LenscapError('ERR_CLI_USAGE', '--to must name another user than --owner');
  const keySource = values.keys ?? 'phone';
  if (keySource !== 'phone' && keySource !== 'directory')
    throw new LenscapError('ERR_CLI_USAGE', '--keys must be phone or directory');
  const devDir = values['dev-dir'] ?? '.lenscap/dev';
  const { join } = await import('node:path');
  const { loadOrCreatePhoneKeys, signMembership, memberOf } = await import('../owner-phone.ts');
  const phones = join(devDir, 'phones');
  const base = cloudUrl(devDir, values.cloud);
  const owner = loadOrCreatePhoneKeys(phones, values.owner);
  try {
    const cur = await relayedMembership(base, values.serial);
    let next: Record<string, unknown>;
    if (keySource === 'phone') {
      const v = loadOrCreatePhoneKeys(phones, values.to);
      next = { ...memberOf(v, 'owner') };
    } else {
      const pub = await callCloud(base, `/api/keys?user=${encodeURIComponent(values.to)}`);
      next = { sub: values.to, role: 'owner', jwk: pub.jwk, hpke: pub.hpke };
      io.err(
        `note: ${values.to}'s key from the cloud's directory: key code ${keyCode(String(pub.jkt))}, thumbprint ${String(pub.jkt)} (compare it with their device's "Your keys")`,
      );
    }
    const members = [
      ...cur.members.filter((m) => m.sub !== values.to && m.sub !== values.owner),
      ...(values.keep ? [memberOf(owner, 'viewer')] : []),
      next,
    ];
    const jws = signMembership(owner, {
      serial: values.serial,
      epoch: cur.epoch,
      version: cur.version + 1,
      members: members as never,
    });
    await callCloud(base, '/api/membership', { serial: values.serial, membership: jws });
    io.out(
      `transferred ${values.serial} from ${values.owner} to ${values.to} (membership v${cur.version + 1}, signed by ${values.owner}${values.keep ? `; ${values.owner} stays a viewer` : ''})`,
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

export const devMemberTransferCommand: Command = {
  name: 'member transfer',
  summary: "Transfer a camera's ownership to another user's key, signed by the current owner's phone.",
  help: `usage: lenscap-dev member transfer --serial S --owner U --to V [--keep] [--keys phone|directory] [--cloud URL] [--dev-dir DIR]

As current owner U's simulated phone (DIR/phones/U/), signs camera S's next membership naming V
as its owner — V's key from V's own simulated phone (--keys phone, the default; made on first use)
or what V registered with the cloud's directory (--keys directory, e.g. V's browser: compare the
printed key code with V's screen) — with U kept as a viewer if --keep. The dev cloud only relays
it. From then on the camera accepts memberships signed by V's key only (U's are refused
ERR_MEMBERSHIP_NOT_OWNER). Exit 0 done, 3 the camera refused (its code on stderr), 1 the tool
failed, 2 usage. DIR defaults to ./.lenscap/dev. Development only.`,
  run: (argv, io) => transfer(argv, io),
};
