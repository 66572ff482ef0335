/**
 * Device identities for bench fleets, the provisioning way: a CSR per serial (CN = serial), signed
 * by the dev CA's `signDeviceCsr` (scripts/dev-cloud/ca.ts). RSA key generation costs 0.1–0.4 s per
 * key here, so a fleet draws its key pairs from a small pool (generated in parallel on Node's thread
 * pool): every camera still has its own certificate and CN, which is what the broker's ACL checks.
 * Must never write a key anywhere but the bench's temp dirs.
 */
import { constants, createPrivateKey, generateKeyPair, privateEncrypt, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import type { DevCa } from '../../scripts/dev-cloud/ca.ts';

const genKeyPair = promisify(generateKeyPair);
/** DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** A forge-compatible signer backed by Node's native RSA (forge's pure-JS private op is ~40 ms). */
function nativeSigner(key: KeyObject) {
  return {
    sign(md: forge.md.MessageDigest): string {
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      return privateEncrypt(
        { key, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO, digest]),
      ).toString('binary');
    },
  };
}

export interface KeyPool {
  size: number;
  issue(serial: string): { key: string; cert: string };
}

export async function makeKeyPool(deviceCa: DevCa, size: number): Promise<KeyPool> {
  const pems = await Promise.all(
    Array.from({ length: size }, () =>
      genKeyPair('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      }),
    ),
  );
  const keys = pems.map((p) => ({
    pem: p.privateKey,
    priv: nativeSigner(createPrivateKey(p.privateKey)),
    pub: forge.pki.publicKeyFromPem(p.publicKey),
  }));
  let next = 0;
  return {
    size,
    issue(serial) {
      const k = keys[next++ % keys.length]!;
      const csr = forge.pki.createCertificationRequest();
      csr.publicKey = k.pub;
      csr.setSubject([{ name: 'commonName', value: serial }]);
      csr.sign(k.priv as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
      const cert = deviceCa.signDeviceCsr(forge.pki.certificationRequestToPem(csr), serial);
      return { key: k.pem, cert };
    },
  };
}
