/**
 * The dev cloud's certificate authorities (node-forge, RSA): the device CA signs device
 * certificates from CSRs and client certificates (the cloud's own MQTT identity, test fleets); the
 * server CA signs the broker's and the provisioning service's TLS certificates. Two CAs, so a
 * device certificate can never pass for the broker (devices trust only the server CA for servers).
 * Persisted under <devDir>/ca (keys 0600, dir 0700) and reused.
 * Development and tests only: must never be used as a production CA (no HSM, no revocation).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import forge from 'node-forge';
import { LenscapError } from '../../agent/errors.ts';
import { writeFileAtomic } from '../../agent/storage/atomic-file.ts';
import type { ToolCode } from '../dev-codes.ts';
import { systemClock, type Clock } from '../../agent/clock.ts';

export interface IssuedPem {
  key: string;
  cert: string;
}

export interface CertOptions {
  /** Validity start (default: the clock's now − 5 min, to tolerate small clock offsets). */
  notBefore?: Date;
  /** Whose now the default validity starts from (default: the system clock). */
  clock?: Clock;
  /** Validity end (default: notBefore + days). */
  notAfter?: Date;
  days?: number;
}

const DEVICE_URN = 'urn:lenscap:device:';

/** Serials a device may carry; the same rule as config `serial`. Reserved names are refused. */
export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RESERVED_SERIALS = new Set(['lenscap-cloud']);
/** Cloud-side client CNs (the dev cloud, benches, tests) live here: no camera may be certified into it. */
const RESERVED_PREFIX = 'lenscap-cloud-';

export function assertDeviceSerial(serial: string): void {
  if (
    !SERIAL_PATTERN.test(serial) ||
    RESERVED_SERIALS.has(serial.toLowerCase()) ||
    serial.toLowerCase().startsWith(RESERVED_PREFIX)
  ) {
    throw new LenscapError<ToolCode>(
      'ERR_SERIAL_INVALID',
      `serial ${JSON.stringify(serial.slice(0, 80))} is not allowed (letters, digits, ".", "_", "-"; max 64; not a reserved name)`,
    );
  }
}

function serialNumber(): string {
  // Positive 16-byte serial (top bit clear), as RFC 5280 asks.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate, opts: CertOptions, defaultDays: number): void {
  const nb = opts.notBefore ?? new Date((opts.clock ?? systemClock).now() - 5 * 60_000);
  cert.validity.notBefore = nb;
  cert.validity.notAfter = opts.notAfter ?? new Date(nb.getTime() + (opts.days ?? defaultDays) * 86_400_000);
}

export function generateRsaKey(bits = 2048): forge.pki.rsa.KeyPair {
  // forge uses Node's native keygen when available (0.1–0.2 s for 2048 bits).
  return forge.pki.rsa.generateKeyPair({ bits, e: 0x10001 });
}

export class DevCa {
  readonly certPem: string;

  constructor(
    private readonly key: forge.pki.rsa.PrivateKey,
    private readonly cert: forge.pki.Certificate,
  ) {
    this.certPem = forge.pki.certificateToPem(cert);
  }

  /** A new self-signed CA (not persisted). */
  static create(cn: string, opts: CertOptions = {}): DevCa {
    const kp = generateRsaKey(2048);
    const cert = forge.pki.createCertificate();
    cert.publicKey = kp.publicKey;
    cert.serialNumber = serialNumber();
    validity(cert, opts, 3650);
    const subject = [
      { name: 'commonName', value: cn },
      { name: 'organizationName', value: 'lenscap dev cloud' },
    ];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(kp.privateKey, forge.md.sha256.create());
    return new DevCa(kp.privateKey, cert);
  }

  /** Loads <dir>/<name>.key + .crt, or creates and persists them (key 0600). */
  static loadOrCreate(dir: string, name: string, cn: string): DevCa {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keyFile = join(dir, `${name}.key`);
    const certFile = join(dir, `${name}.crt`);
    if (existsSync(keyFile) && existsSync(certFile)) {
      const key = forge.pki.privateKeyFromPem(readFileSync(keyFile, 'utf8')) as forge.pki.rsa.PrivateKey;
      const cert = forge.pki.certificateFromPem(readFileSync(certFile, 'utf8'));
      return new DevCa(key, cert);
    }
    const ca = DevCa.create(cn);
    // Certificate first: a crash in between leaves no key without its cert to be reused wrongly.
    writeFileAtomic(certFile, ca.certPem, 0o644);
    writeFileAtomic(keyFile, forge.pki.privateKeyToPem(ca.key), 0o600);
    return ca;
  }

  private base(
    publicKey: forge.pki.PublicKey,
    cn: string,
    opts: CertOptions,
    defaultDays: number,
  ): forge.pki.Certificate {
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = serialNumber();
    validity(cert, opts, defaultDays);
    cert.setSubject([{ name: 'commonName', value: cn }]);
    cert.setIssuer(this.cert.subject.attributes);
    return cert;
  }

  private finish(cert: forge.pki.Certificate, ext: object[]): string {
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      ...ext,
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.cert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(this.key, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  }

  /**
   * Signs a device CSR: CN = serial, SAN URI urn:lenscap:device:<serial>, EKU clientAuth (broker)
   * and serverAuth (the camera's HTTPS gate). Refuses a CSR whose signature or CN is wrong: the
   * subject comes from `serial`, never from what the CSR asks for.
   */
  signDeviceCsr(csrPem: string, serial: string, opts: CertOptions = {}): string {
    assertDeviceSerial(serial);
    let csr: forge.pki.CertificateSigningRequest;
    try {
      csr = forge.pki.certificationRequestFromPem(csrPem);
    } catch {
      throw new LenscapError<ToolCode>(
        'ERR_CSR_INVALID',
        'the CSR is not a PEM PKCS#10 request with an RSA key',
      );
    }
    if (!csr.verify())
      throw new LenscapError<ToolCode>('ERR_CSR_INVALID', 'the CSR signature does not verify');
    const cn = csr.subject.getField('CN')?.value as string | undefined;
    if (cn !== serial)
      throw new LenscapError<ToolCode>(
        'ERR_CSR_SERIAL_MISMATCH',
        `the CSR names ${JSON.stringify(cn)}, not ${serial}`,
      );
    const bits = (csr.publicKey as forge.pki.rsa.PublicKey).n.bitLength();
    if (bits < 2048)
      throw new LenscapError<ToolCode>('ERR_CSR_WEAK_KEY', `RSA-${bits} is too weak (2048 or more)`);
    const cert = this.base(csr.publicKey!, serial, opts, 365);
    return this.finish(cert, [
      { name: 'extKeyUsage', clientAuth: true, serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 6, value: `${DEVICE_URN}${serial}` }] },
    ]);
  }

  /** A server certificate for 127.0.0.1 / localhost (+ extra DNS names), with a fresh key. */
  issueServer(cn: string, opts: CertOptions & { dnsNames?: string[]; ips?: string[] } = {}): IssuedPem {
    const kp = generateRsaKey(2048);
    const cert = this.base(kp.publicKey, cn, opts, 825);
    const altNames = [
      ...['localhost', ...(opts.dnsNames ?? [])].map((value) => ({ type: 2, value })),
      ...['127.0.0.1', ...(opts.ips ?? [])].map((ip) => ({ type: 7, ip })),
    ];
    const pem = this.finish(cert, [
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ]);
    return { key: forge.pki.privateKeyToPem(kp.privateKey), cert: pem };
  }

  /** A client certificate with a fresh key (the cloud's MQTT identity, test and bench fleets). */
  issueClient(cn: string, opts: CertOptions = {}): IssuedPem {
    const kp = generateRsaKey(2048);
    const cert = this.base(kp.publicKey, cn, opts, 365);
    const pem = this.finish(cert, [
      { name: 'extKeyUsage', clientAuth: true, serverAuth: true },
      ...(SERIAL_PATTERN.test(cn)
        ? [{ name: 'subjectAltName', altNames: [{ type: 6, value: `${DEVICE_URN}${cn}` }] }]
        : []),
    ]);
    return { key: forge.pki.privateKeyToPem(kp.privateKey), cert: pem };
  }
}

/** The dev cloud's two CAs, persisted under <devDir>/ca. */
export function loadOrCreateDevCas(devDir: string): { deviceCa: DevCa; serverCa: DevCa; dir: string } {
  const dir = join(devDir, 'ca');
  return {
    dir,
    deviceCa: DevCa.loadOrCreate(dir, 'device-ca', 'lenscap dev device CA'),
    serverCa: DevCa.loadOrCreate(dir, 'server-ca', 'lenscap dev server CA'),
  };
}
