/**
 * A user's phone, simulated: the member keys (ES256 signing key for DPoP and memberships, X25519
 * key for sealing), kept in files with ssh-like permissions (dir 0700, private keys 0600); the
 * claim (nonce → HMAC proof with the label code → owner-signed membership); memberships signed by
 * the owner; DPoP proofs for grants. Development and tests only: the camera only verifies.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { LenscapError } from '../../agent/errors.ts';
import type { ToolCode } from '../dev-codes.ts';
import { join } from 'node:path';
import { writeFileAtomic } from '../../agent/storage/atomic-file.ts';
import { claimProof } from '../../agent/owner/claim-proof.ts';
import { parseClaimCode } from '../../agent/owner/claim-code.ts';
import { accessTokenHash, DPOP_TYP } from '../../agent/owner/dpop.ts';
import { jwkThumbprint, type SealingJwk, type SigningJwk } from '../../agent/owner/jwk.ts';
import { MEMBERSHIP_TYP } from '../../agent/owner/membership.ts';

export interface PhoneKeys {
  sub: string;
  signing: KeyObject;
  jwk: SigningJwk;
  /** RFC 7638 thumbprint of `jwk`: the grant's `cnf.jkt`. */
  jkt: string;
  hpkePrivate: KeyObject;
  hpke: SealingJwk;
}

export interface MemberEntry {
  sub: string;
  role: 'owner' | 'viewer';
  jwk: SigningJwk;
  hpke?: SealingJwk;
}

function publicSigning(k: KeyObject): SigningJwk {
  const j = createPublicKey(k).export({ format: 'jwk' }) as { x: string; y: string };
  return { kty: 'EC', crv: 'P-256', x: j.x, y: j.y };
}

function publicSealing(k: KeyObject): SealingJwk {
  const j = createPublicKey(k).export({ format: 'jwk' }) as { x: string };
  return { kty: 'OKP', crv: 'X25519', x: j.x };
}

function fromPrivate(sub: string, signing: KeyObject, hpkePrivate: KeyObject): PhoneKeys {
  const jwk = publicSigning(signing);
  return { sub, signing, jwk, jkt: jwkThumbprint(jwk), hpkePrivate, hpke: publicSealing(hpkePrivate) };
}

export function newPhoneKeys(sub: string): PhoneKeys {
  return fromPrivate(
    sub,
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    generateKeyPairSync('x25519').privateKey,
  );
}

/** `<dir>/<sub>/{signing,hpke}.key.pem` (0600), created once and reused. */
export function loadOrCreatePhoneKeys(dir: string, sub: string): PhoneKeys {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(sub))
    throw new Error(`user name ${JSON.stringify(sub)} is not a file name`);
  const home = join(dir, sub);
  const sigFile = join(home, 'signing.key.pem');
  const hpkeFile = join(home, 'hpke.key.pem');
  if (existsSync(sigFile) && existsSync(hpkeFile)) {
    // As ssh does with ~/.ssh/id_*: a private key others can read is not used.
    for (const f of [sigFile, hpkeFile]) {
      const mode = statSync(f).mode & 0o777;
      if (mode & 0o077)
        throw new LenscapError<ToolCode>(
          'ERR_KEY_INVALID',
          `private key ${f} is accessible by others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it, or delete the phone's directory to make new keys`,
        );
    }
    return fromPrivate(
      sub,
      createPrivateKey(readFileSync(sigFile)),
      createPrivateKey(readFileSync(hpkeFile)),
    );
  }
  const keys = newPhoneKeys(sub);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileAtomic(sigFile, keys.signing.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
  writeFileAtomic(hpkeFile, keys.hpkePrivate.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
  writeFileAtomic(
    join(home, 'public.json'),
    JSON.stringify({ sub, jwk: keys.jwk, jkt: keys.jkt, hpke: keys.hpke }, null, 2),
    0o644,
  );
  return keys;
}

export function memberOf(keys: PhoneKeys, role: 'owner' | 'viewer'): MemberEntry {
  return { sub: keys.sub, role, jwk: keys.jwk, hpke: keys.hpke };
}

function signEs256(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: KeyObject,
): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const sig = sign('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' });
  return `${h}.${p}.${sig.toString('base64url')}`;
}

/** A membership signed by `signer` (the current owner; for a transfer, still the current one). */
export function signMembership(
  signer: PhoneKeys,
  doc: { serial: string; epoch: string; version: number; members: MemberEntry[]; iat?: number },
): string {
  return signEs256(
    { typ: MEMBERSHIP_TYP, alg: 'ES256', kid: signer.jkt },
    {
      serial: doc.serial,
      epoch: doc.epoch,
      version: doc.version,
      iat: doc.iat ?? Math.floor(Date.now() / 1000),
      members: doc.members,
    },
    signer.signing,
  );
}

/** The `cmd/claim` payload (without id): proof of the label code over the owner key and nonce. */
export function makeClaim(
  owner: PhoneKeys,
  p: { code: string; serial: string; nonce: string; viewers?: MemberEntry[] },
): { nonce: string; proof: string; membership: string } {
  const proof = claimProof(parseClaimCode(p.code), { jkt: owner.jkt, serial: p.serial, nonce: p.nonce });
  const membership = signMembership(owner, {
    serial: p.serial,
    epoch: p.nonce,
    version: 1,
    members: [memberOf(owner, 'owner'), ...(p.viewers ?? [])],
  });
  return { nonce: p.nonce, proof, membership };
}

/** A DPoP proof (RFC 9449) for one request with one grant. */
export function makeDpopProof(
  keys: PhoneKeys,
  p: { htm: string; htu: string; token: string; iat?: number; jti?: string },
): string {
  return signEs256(
    { typ: DPOP_TYP, alg: 'ES256', jwk: keys.jwk },
    {
      htm: p.htm,
      htu: p.htu,
      jti: p.jti ?? randomBytes(12).toString('base64url'),
      iat: p.iat ?? Math.floor(Date.now() / 1000),
      ath: accessTokenHash(p.token),
    },
    keys.signing,
  );
}
