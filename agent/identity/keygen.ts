/**
 * The device's key pair and CSR, made on the device with node-forge (which uses Node's native RSA
 * key generation when present: ~0.1–0.2 s for 2048 bits). forge's X.509 is RSA-only.
 * CSR: CN = serial, SAN URI urn:lenscap:device:<serial>. Must never send or log the private key.
 */
import forge from 'node-forge';
import { LenscapError } from '../errors.ts';

export const KEY_SIZES = [2048, 3072] as const;
export type KeySize = (typeof KEY_SIZES)[number];

export interface DeviceKey {
  keyPem: string;
  csrPem: string;
}

export function generateDeviceKey(serial: string, bits: number = 2048): DeviceKey {
  if (!(KEY_SIZES as readonly number[]).includes(bits)) {
    throw new LenscapError('ERR_PROVISION_USAGE', `--key-size must be 2048 or 3072 (got ${bits})`);
  }
  const kp = forge.pki.rsa.generateKeyPair({ bits, e: 0x10001 });
  return { keyPem: forge.pki.privateKeyToPem(kp.privateKey), csrPem: csrFor(serial, kp) };
}

/** A CSR for an existing key (resuming an interrupted provisioning with the key already made). */
export function csrForKeyPem(serial: string, keyPem: string): string {
  const privateKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  return csrFor(serial, { privateKey, publicKey });
}

function csrFor(
  serial: string,
  kp: { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey },
): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = kp.publicKey;
  csr.setSubject([{ name: 'commonName', value: serial }]);
  csr.setAttributes([
    {
      name: 'extensionRequest',
      extensions: [
        { name: 'subjectAltName', altNames: [{ type: 6, value: `urn:lenscap:device:${serial}` }] },
      ],
    },
  ]);
  csr.sign(kp.privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}
