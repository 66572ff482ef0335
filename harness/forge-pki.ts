/**
 * Throwaway PKI for the stack tests that run before (or without) the dev cloud's CA: a CA, a
 * server cert for 127.0.0.1/localhost and client certs with a chosen CN. Generated at run time,
 * never written to the repository.
 */
import forge from 'node-forge';

export interface Pem {
  key: string;
  cert: string;
}

function keypair(): forge.pki.rsa.KeyPair {
  return forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

let serialCounter = 1;

function baseCert(publicKey: forge.pki.PublicKey, cn: string, days = 1): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = (Date.now() * 100 + serialCounter++).toString(16);
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  return cert;
}

export function makeCa(cn: string): Pem & { _key: forge.pki.rsa.PrivateKey; _cert: forge.pki.Certificate } {
  const kp = keypair();
  const cert = baseCert(kp.publicKey, cn, 30);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  cert.sign(kp.privateKey, forge.md.sha256.create());
  return {
    key: forge.pki.privateKeyToPem(kp.privateKey),
    cert: forge.pki.certificateToPem(cert),
    _key: kp.privateKey,
    _cert: cert,
  };
}

/**
 * Client certificates for many CNs over one key pair (benches: with the client id tied to the
 * certificate CN on mosquitto, every simulated camera needs a certificate of its own).
 */
export function issueMany(ca: ReturnType<typeof makeCa>, cns: readonly string[]): Pem[] {
  const kp = keypair();
  return cns.map((cn) => issue(ca, cn, 'client', kp));
}

export function issue(
  ca: ReturnType<typeof makeCa>,
  cn: string,
  kind: 'server' | 'client',
  kp: forge.pki.rsa.KeyPair = keypair(),
): Pem {
  const cert = baseCert(kp.publicKey, cn);
  cert.setIssuer(ca._cert.subject.attributes);
  const ext: object[] = [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    kind === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
  ];
  if (kind === 'server')
    ext.push({
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    });
  cert.setExtensions(ext);
  cert.sign(ca._key, forge.md.sha256.create());
  return { key: forge.pki.privateKeyToPem(kp.privateKey), cert: forge.pki.certificateToPem(cert) };
}
