/**
 * What the dev cloud signs for cameras: viewer grants (issuer key) and binding records (binding
 * key). The shapes are the contract in docs/grants.md; the camera's verifier is the judge.
 * Development and tests only.
 */
import { randomBytes } from 'node:crypto';
import { signCompact } from '../../agent/grants/jws.ts';
import { BINDING_TYP } from '../../agent/grants/binding.ts';
import { GRANT_TYP } from '../../agent/grants/verify.ts';
import type { SigningKey } from './signing-keys.ts';

export const DEV_ISSUER = 'https://cloud.lenscap.dev';

export interface GrantRequest {
  serial: string;
  viewer: string;
  ttlSeconds?: number;
  scope?: string;
  relay?: string;
  issuer?: string;
  /** Seconds since the epoch; default now. */
  now?: number;
  jti?: string;
  nbf?: number;
  /** Owner-held mode: the RFC 7638 thumbprint of the viewer's key (`cnf.jkt`). */
  jkt?: string;
}

export function mintGrant(
  issuerKey: SigningKey,
  req: GrantRequest,
): { token: string; jti: string; exp: number; iat: number } {
  const iat = Math.floor(req.now ?? Date.now() / 1000);
  const exp = iat + (req.ttlSeconds ?? 300);
  const jti = req.jti ?? randomBytes(12).toString('base64url');
  const payload: Record<string, unknown> = {
    iss: req.issuer ?? DEV_ISSUER,
    aud: req.serial,
    sub: req.viewer,
    jti,
    iat,
    exp,
    scope: req.scope ?? 'live',
  };
  if (req.relay !== undefined) payload.relay = req.relay;
  if (req.nbf !== undefined) payload.nbf = req.nbf;
  if (req.jkt !== undefined) payload.cnf = { jkt: req.jkt };
  const token = signCompact(
    { alg: 'EdDSA', typ: GRANT_TYP, kid: issuerKey.kid },
    payload,
    issuerKey.privateKey,
  );
  return { token, jti, exp, iat };
}

export interface BindingRequest {
  serial: string;
  owner: string;
  viewers?: string[];
  /** Must grow with every change; default: milliseconds now (monotonic enough for a dev cloud). */
  version?: number;
}

export function signBindingRecord(bindingKey: SigningKey, req: BindingRequest): string {
  return signCompact(
    { alg: 'EdDSA', typ: BINDING_TYP, kid: bindingKey.kid },
    {
      serial: req.serial,
      owner: req.owner,
      viewers: req.viewers ?? [],
      version: req.version ?? Date.now(),
      iat: Math.floor(Date.now() / 1000),
    },
    bindingKey.privateKey,
  );
}
