/**
 * The agent's start checks on its identity (like ssh's checks on its keys): key and directory
 * permissions, key ↔ certificate match, validity window, chain to the pinned device CA, and the
 * configured serial against the certificate's CN. Returns the checked material for TLS users.
 * Must never let the agent start on any doubt: every failure is a LenscapError with a stable code.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Clock } from '../clock.ts';
import { LenscapError } from '../errors.ts';
import type { StateLayout } from '../state-layout.ts';
import { checkStateTree } from './state-check.ts';
import {
  chainsTo,
  commonName,
  keyMatchesCert,
  parseCert,
  privateKeyFromPem,
  splitPemBundle,
  validityMs,
} from './x509.ts';

export const IDENTITY_ERRORS = {
  missing: 'ERR_IDENTITY_MISSING',
  invalid: 'ERR_IDENTITY_INVALID',
  permissions: 'ERR_IDENTITY_KEY_PERMISSIONS',
  keyMismatch: 'ERR_IDENTITY_KEY_MISMATCH',
  expired: 'ERR_IDENTITY_CERT_EXPIRED',
  notYetValid: 'ERR_IDENTITY_CERT_NOT_YET_VALID',
  untrusted: 'ERR_IDENTITY_UNTRUSTED_CA',
  serialMismatch: 'ERR_IDENTITY_SERIAL_MISMATCH',
} as const;

export interface CheckedIdentity {
  /** The certificate's CN. */
  serial: string;
  keyPem: string;
  certPem: string;
  /** Intermediates (may be empty). */
  chainPem: string;
  /** The pinned device CA. */
  caPem: string;
  /** The only trust for the broker's certificate. */
  brokerCaPem: string;
  notBefore: Date;
  notAfter: Date;
  /** The certificate's hex serial number (changes on every renewal). */
  certSerialNumber: string;
  fingerprint256: string;
}

export interface CheckIdentityOptions {
  paths: StateLayout;
  expectedSerial?: string | undefined;
  clock: Clock;
}

function readRequired(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new LenscapError(
        IDENTITY_ERRORS.missing,
        `${what} is missing (${file}): this camera is not provisioned; run \`lenscap provision\``,
        { file },
      );
    }
    throw new LenscapError(
      IDENTITY_ERRORS.invalid,
      `cannot read ${what} (${file}): ${code ?? (err as Error).message}`,
      { file },
    );
  }
}

function readOptional(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Key 0600 (or stricter) and its directory 0700: nobody but the owner may read either. */
export function checkKeyPermissions(paths: StateLayout): void {
  for (const [file, what] of [
    [paths.identityDir, 'identity directory'],
    [paths.deviceKey, 'device key'],
  ] as const) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new LenscapError(
          IDENTITY_ERRORS.missing,
          `${what} is missing (${file}): this camera is not provisioned; run \`lenscap provision\``,
          { file },
        );
      }
      throw err;
    }
    if ((mode & 0o077) !== 0) {
      const want = file === paths.deviceKey ? '0600' : '0700';
      throw new LenscapError(
        IDENTITY_ERRORS.permissions,
        `${what} ${file} is accessible by group/others (mode 0${mode.toString(8)}); run \`chmod ${want} ${file}\` (and check who could have read it)`,
        { file, mode: `0${mode.toString(8)}` },
      );
    }
  }
}

export function checkIdentity(opts: CheckIdentityOptions): CheckedIdentity {
  const { paths } = opts;
  // The whole tree first (owner, modes, no symlink, regular files): trust, binding, audit, replay
  // and queued events matter as much as the key.
  checkStateTree(paths);
  checkKeyPermissions(paths);
  const keyPem = readRequired(paths.deviceKey, 'device key');
  const certPem = readRequired(paths.deviceCert, 'device certificate');
  const caPem = readRequired(paths.deviceCa, 'pinned device CA');
  const brokerCaPem = readRequired(paths.brokerCa, 'broker CA');
  const chainPem = readOptional(paths.chain);

  const facts = checkMaterial({
    keyPem,
    certPem,
    chainPem,
    caPem,
    expectedSerial: opts.expectedSerial,
    now: opts.clock.now(),
    where: paths.identityDir,
  });
  return { ...facts, keyPem, certPem, chainPem, caPem, brokerCaPem };
}

export interface MaterialFacts {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  certSerialNumber: string;
  fingerprint256: string;
}

/**
 * The checks on in-memory material: used at start (files), and by provisioning and renewal on
 * what the service sent before anything is installed.
 */
export function checkMaterial(m: {
  keyPem: string;
  certPem: string;
  chainPem: string;
  caPem: string;
  expectedSerial?: string | undefined;
  now: number;
  where: string;
}): MaterialFacts {
  let key, cert, cas, chain;
  try {
    key = privateKeyFromPem(m.keyPem);
    cert = parseCert(m.certPem);
    cas = splitPemBundle(m.caPem).map(parseCert);
    chain = splitPemBundle(m.chainPem).map(parseCert);
  } catch (err) {
    throw new LenscapError(
      IDENTITY_ERRORS.invalid,
      `identity material (${m.where}) does not parse: ${(err as Error).message}`,
    );
  }
  if (cas.length === 0)
    throw new LenscapError(IDENTITY_ERRORS.invalid, `no device CA certificate (${m.where})`);

  if (!keyMatchesCert(key, cert)) {
    throw new LenscapError(
      IDENTITY_ERRORS.keyMismatch,
      `the device key does not match the device certificate (${m.where}); re-provision with --force`,
    );
  }
  if (!chainsTo(cert, chain, cas)) {
    throw new LenscapError(
      IDENTITY_ERRORS.untrusted,
      `the device certificate (issuer ${cert.issuer.replace(/\n/g, ', ')}) does not chain to the pinned device CA (${m.where})`,
    );
  }
  const { notBefore, notAfter } = validityMs(cert);
  const now = m.now;
  if (now >= notAfter) {
    throw new LenscapError(
      IDENTITY_ERRORS.expired,
      `the device certificate expired at ${new Date(notAfter).toISOString()} (clock says ${new Date(now).toISOString()}); re-provision the camera, or fix the clock if it is wrong`,
      { notAfter: new Date(notAfter).toISOString() },
    );
  }
  if (now < notBefore) {
    throw new LenscapError(
      IDENTITY_ERRORS.notYetValid,
      `the device certificate is valid only from ${new Date(notBefore).toISOString()} (clock says ${new Date(now).toISOString()}); check the camera's clock (NTP)`,
      { notBefore: new Date(notBefore).toISOString() },
    );
  }
  const serial = commonName(cert);
  if (!serial)
    throw new LenscapError(IDENTITY_ERRORS.invalid, 'the device certificate has no CN (the serial)');
  if (m.expectedSerial !== undefined && m.expectedSerial !== serial) {
    throw new LenscapError(
      IDENTITY_ERRORS.serialMismatch,
      `config serial ${m.expectedSerial} differs from the certificate's CN ${serial}`,
      { expected: m.expectedSerial, cn: serial },
    );
  }
  return {
    serial,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    certSerialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
  };
}
