/**
 * PKI for tests and benches, all on the dev CA (scripts/dev-cloud/ca.ts `DevCa`): `makeTestPki` (a
 * device CA, a server CA with a broker cert for 127.0.0.1, N device certs, written to a temp dir),
 * and fleet identities the provisioning way (`makeKeyPool`: a CSR per serial, CN = serial, signed by
 * `signDeviceCsr`; `issueMany`). RSA key generation costs 0.1–0.4 s per key here, so a fleet draws
 * its key pairs from a small pool (generated in parallel on Node's thread pool): every camera still
 * has its own certificate and CN, which is what the broker's ACL checks. A single CA or leaf is
 * `DevCa.create(cn)`, `ca.issueServer(cn)`, `ca.issueClient(cn)`.
 * Must never write a key anywhere but the caller's temp dirs (never into the repository).
 */
import { constants, createPrivateKey, generateKeyPair, privateEncrypt, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { DevCa, type CertOptions, type IssuedPem } from '../scripts/dev-cloud/ca.ts';

export interface TestPki {
  deviceCa: DevCa;
  serverCa: DevCa;
  /** Device CA PEM (what the broker trusts for clients; what a camera pins). */
  caPem: string;
  caFile: string;
  /** Server CA PEM (what a client trusts for the broker). */
  serverCaPem: string;
  serverCaFile: string;
  server: IssuedPem & { certFile: string; keyFile: string };
  devices: Map<string, IssuedPem>;
  /** Another device cert (fresh key) on demand. */
  device(serial: string, opts?: CertOptions): IssuedPem;
}

export function makeTestPki(dir: string, serials: string[] = []): TestPki {
  const deviceCa = DevCa.create('lenscap test device CA');
  const serverCa = DevCa.create('lenscap test server CA');
  const caFile = join(dir, 'device-ca.pem');
  const serverCaFile = join(dir, 'server-ca.pem');
  writeFileSync(caFile, deviceCa.certPem);
  writeFileSync(serverCaFile, serverCa.certPem);
  const server = serverCa.issueServer('localhost');
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  writeFileSync(certFile, server.cert);
  writeFileSync(keyFile, server.key, { mode: 0o600 });
  const devices = new Map<string, IssuedPem>();
  for (const s of serials) devices.set(s, deviceCa.issueClient(s));
  return {
    deviceCa,
    serverCa,
    caPem: deviceCa.certPem,
    caFile,
    serverCaPem: serverCa.certPem,
    serverCaFile,
    server: { ...server, certFile, keyFile },
    devices,
    device: (serial, opts) => deviceCa.issueClient(serial, opts),
  };
}

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

/** Client certificates for many serials over one key pair (the storm benches: N clients, N CNs). */
export async function issueMany(ca: DevCa, serials: readonly string[]): Promise<IssuedPem[]> {
  const pool = await makeKeyPool(ca, 1);
  return serials.map((s) => pool.issue(s));
}
