/**
 * What the dev cloud keeps of the owner-signed memberships it relays: per camera the latest
 * document and its members' public key thumbprints, so the grant service can bind each grant to
 * its viewer's key (`cnf.jkt`). The cloud cannot sign a membership; it only reads what it relays.
 * Files: `<devDir>/memberships/<serial>.json`. Development and tests only.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../agent/storage/atomic-file.ts';
import { jwkThumbprint, parseSigningJwk } from '../../agent/owner/jwk.ts';

export interface RelayedMembership {
  serial: string;
  epoch: string;
  version: number;
  members: Array<{ sub: string; role: string; jkt: string }>;
  jws: string;
}

function file(devDir: string, serial: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(serial))
    throw new Error(`bad serial ${JSON.stringify(serial)}`);
  return join(devDir, 'memberships', `${serial}.json`);
}

/** Records a membership the camera accepted (read, not verified: the camera is the judge). */
export function recordMembership(devDir: string, jws: string): RelayedMembership {
  const payload = JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
    serial: string;
    epoch: string;
    version: number;
    members: Array<{ sub: string; role: string; jwk: unknown }>;
  };
  const rec: RelayedMembership = {
    serial: payload.serial,
    epoch: payload.epoch,
    version: payload.version,
    members: payload.members.map((m) => ({
      sub: m.sub,
      role: m.role,
      jkt: jwkThumbprint(parseSigningJwk(m.jwk)),
    })),
    jws,
  };
  mkdirSync(join(devDir, 'memberships'), { recursive: true, mode: 0o700 });
  writeFileAtomic(file(devDir, rec.serial), JSON.stringify(rec, null, 2), 0o644);
  return rec;
}

export function readMembership(devDir: string, serial: string): RelayedMembership | undefined {
  const f = file(devDir, serial);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as RelayedMembership) : undefined;
}

/** The key a grant for `sub` on `serial` must be bound to, when the camera is owner-held. */
export function memberJkt(devDir: string, serial: string, sub: string): string | undefined {
  return readMembership(devDir, serial)?.members.find((m) => m.sub === sub)?.jkt;
}

/** Forgets a camera's membership (after a local reset the camera has none). */
export function forgetMembership(devDir: string, serial: string): void {
  const f = file(devDir, serial);
  if (existsSync(f)) writeFileAtomic(f, JSON.stringify(null), 0o644);
}
