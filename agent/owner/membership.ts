/**
 * The owner-signed membership: who may view this camera, each with a role and public keys, signed
 * (ES256) by the current owner's key — never by any cloud key. `typ: lenscap-membership+jwt`,
 * serial-bound, bound to the claim epoch (the nonce of the claim that made the owner, so a reset
 * and a new claim kill every older document), versioned with a floor.
 * Transfer of ownership is a membership signed by the current owner naming another owner key.
 * Must never accept a document for another serial or epoch, an older version, a signature by any
 * key but the current owner's, or a member key with a private part.
 */
import { z } from 'zod';
import { LenscapError, isLenscapError } from '../errors.ts';
import { verifySignedDocument } from '../grants/signed-document.ts';
import {
  jwkThumbprint,
  parseSealingJwk,
  parseSigningJwk,
  signingKeyObject,
  type SealingJwk,
  type SigningJwk,
} from './jwk.ts';

export const MEMBERSHIP_TYP = 'lenscap-membership+jwt';
export const MAX_MEMBERS = 64;

const memberSchema = z
  .object({
    sub: z.string().min(1).max(256),
    role: z.enum(['owner', 'viewer']),
    jwk: z.record(z.string(), z.unknown()),
    hpke: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const payloadSchema = z
  .object({
    serial: z.string().min(1).max(64),
    epoch: z.string().min(8).max(128),
    version: z.number().int().positive(),
    iat: z.number().int().nonnegative(),
    members: z.array(memberSchema).min(1).max(MAX_MEMBERS),
  })
  .strict();

export interface Member {
  sub: string;
  role: 'owner' | 'viewer';
  jwk: SigningJwk;
  /** RFC 7638 thumbprint of `jwk`: what a key-bound grant carries as `cnf.jkt`. */
  jkt: string;
  hpke?: SealingJwk;
  /** RFC 7638 thumbprint of `hpke`: the key id a sealed stream names. */
  hpkeKid?: string;
}

export interface Membership {
  serial: string;
  epoch: string;
  version: number;
  iat: number;
  members: Member[];
  owner: Member;
}

/**
 * Verifies a membership signed by `signer` (the current owner's key). Throws:
 * ERR_MEMBERSHIP_NOT_OWNER (signed by anyone else, e.g. a cloud key), ERR_MEMBERSHIP_INVALID
 * (shape, keys, roles), ERR_MEMBERSHIP_WRONG_SERIAL, ERR_MEMBERSHIP_WRONG_EPOCH,
 * ERR_MEMBERSHIP_ROLLBACK.
 */
export function verifyMembership(
  jws: string,
  opts: { serial: string; epoch: string; signer: SigningJwk; minVersion?: number },
): Membership {
  const signerKid = jwkThumbprint(opts.signer);
  let payload: z.infer<typeof payloadSchema>;
  try {
    ({ payload } = verifySignedDocument(jws, {
      typ: MEMBERSHIP_TYP,
      keys: new Map([[signerKid, { kid: signerKid, alg: 'ES256', key: signingKeyObject(opts.signer) }]]),
      schema: payloadSchema,
      errorCode: 'ERR_MEMBERSHIP_INVALID',
      what: 'membership',
    }));
  } catch (err) {
    const reason = isLenscapError(err) ? err.detail?.reason : undefined;
    if (reason === 'unknown_key' || reason === 'bad_signature' || reason === 'alg_not_allowed')
      throw new LenscapError(
        'ERR_MEMBERSHIP_NOT_OWNER',
        `membership is not signed by the current owner's key (${String(reason)})`,
        { reason },
      );
    throw err;
  }
  if (payload.serial !== opts.serial)
    throw new LenscapError(
      'ERR_MEMBERSHIP_WRONG_SERIAL',
      `membership is for ${JSON.stringify(payload.serial.slice(0, 64))}, not this camera`,
    );
  if (payload.epoch !== opts.epoch)
    throw new LenscapError(
      'ERR_MEMBERSHIP_WRONG_EPOCH',
      'membership belongs to an earlier claim of this camera',
    );
  if (opts.minVersion !== undefined && payload.version <= opts.minVersion)
    throw new LenscapError(
      'ERR_MEMBERSHIP_ROLLBACK',
      `membership version ${payload.version} is not newer than installed ${opts.minVersion}`,
    );
  const members: Member[] = [];
  const subs = new Set<string>();
  const jkts = new Set<string>();
  for (const [i, m] of payload.members.entries()) {
    let jwk: SigningJwk;
    let hpke: SealingJwk | undefined;
    try {
      jwk = parseSigningJwk(m.jwk, `members.${i}.jwk`);
      hpke = m.hpke === undefined ? undefined : parseSealingJwk(m.hpke, `members.${i}.hpke`);
    } catch (err) {
      throw new LenscapError('ERR_MEMBERSHIP_INVALID', `membership refused: ${(err as Error).message}`);
    }
    const jkt = jwkThumbprint(jwk);
    if (subs.has(m.sub) || jkts.has(jkt))
      throw new LenscapError('ERR_MEMBERSHIP_INVALID', `membership lists member ${i} (or its key) twice`);
    subs.add(m.sub);
    jkts.add(jkt);
    members.push({
      sub: m.sub,
      role: m.role,
      jwk,
      jkt,
      ...(hpke ? { hpke, hpkeKid: jwkThumbprint(hpke) } : {}),
    });
  }
  const owners = members.filter((m) => m.role === 'owner');
  if (owners.length !== 1)
    throw new LenscapError('ERR_MEMBERSHIP_INVALID', `membership names ${owners.length} owners, expected 1`);
  return { ...payload, members, owner: owners[0]! };
}
