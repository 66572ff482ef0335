/**
 * The identity side of the dev cloud, started by `lenscap-dev`, `npm start` (through
 * cloud.ts startStack) and tests: the device and server CAs, the provisioning service's and the
 * broker's TLS certificates, the dev cloud's own MQTT client identity, the signing keys' trust
 * root and bundle, and the HTTPS provisioning/renewal service. State lives in the dev dir
 * (scripts/dev-cloud/layout.ts) and is reused across runs.
 * Must never listen beyond the host it is given (loopback by default), nor hand out a private key
 * other than the dev cloud's own (broker, cloud client) to its own in-process callers.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Clock } from '../../agent/clock.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import { writeFileAtomic } from '../../agent/storage/atomic-file.ts';
import { loadOrCreateDevCas, type CertOptions, type DevCa, type IssuedPem } from './ca.ts';
import type { DevCloudIdentity } from './cloud.ts';
import { devLayout } from './layout.ts';
import { startProvisioningService, type ProvisioningService } from './provisioning-service.ts';
import { loadOrCreateSigningKeys } from './signing-keys.ts';
import { createToken as createTokenIn, DEFAULT_TOKEN_TTL_SECONDS } from './tokens.ts';

export { createToken } from './tokens.ts';

export const CLOUD_CLIENT_CN = 'lenscap-cloud';
const RENEW_BEFORE_MS = 30 * 86_400_000;

export interface DevCloudIdentityOptions {
  devDir: string;
  /** Where the provisioning service listens (default 127.0.0.1). */
  host?: string;
  /** 0 / undefined = any free port. */
  port?: number;
  logger?: Logger;
  clock?: Clock;
  /** Validity of issued device certs (tests). */
  certOptions?: (kind: 'provision' | 'renew', serial: string) => CertOptions;
}

export type StartedDevCloudIdentity = Omit<DevCloudIdentity, 'mintGrant' | 'bindingCommand'> & {
  devDir: string;
  /** Same as provisioningCaFile's content: the CA the provisioning service's TLS cert chains to. */
  caPem: string;
  service: ProvisioningService;
  /** createToken with a ttl (seconds). */
  createTokenFor(serial: string, ttlSeconds?: number): Promise<string>;
};

/** Reuses a persisted leaf cert while it is issued by `ca`, names every needed host and has > 30 days left. */
function loadOrIssue(
  keyFile: string,
  certFile: string,
  ca: DevCa,
  usable: (cert: X509Certificate) => boolean,
  issue: () => IssuedPem,
): IssuedPem {
  if (existsSync(keyFile) && existsSync(certFile)) {
    try {
      const pem = { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
      const cert = new X509Certificate(pem.cert);
      const caCert = new X509Certificate(ca.certPem);
      const fresh = Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS;
      if (fresh && cert.checkIssued(caCert) && cert.verify(caCert.publicKey) && usable(cert)) return pem;
    } catch {
      /* unreadable: issue a new one */
    }
  }
  const pem = issue();
  writeFileAtomic(keyFile, pem.key, 0o600);
  writeFileAtomic(certFile, pem.cert, 0o644);
  return pem;
}

function serverCert(keyFile: string, certFile: string, ca: DevCa, cn: string, host: string): IssuedPem {
  const extra =
    host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '0.0.0.0' ? undefined : host;
  const want = extra ? (isIP(extra) ? `IP Address:${extra}` : `DNS:${extra}`) : undefined;
  return loadOrIssue(
    keyFile,
    certFile,
    ca,
    (cert) => !want || (cert.subjectAltName ?? '').split(', ').includes(want),
    () => ca.issueServer(cn, extra ? (isIP(extra) ? { ips: [extra] } : { dnsNames: [extra] }) : {}),
  );
}

export async function startDevCloudIdentity(opts: DevCloudIdentityOptions): Promise<StartedDevCloudIdentity> {
  const log = opts.logger ?? silentLogger();
  const host = opts.host ?? '127.0.0.1';
  const paths = devLayout(opts.devDir);
  mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  const { deviceCa, serverCa } = loadOrCreateDevCas(paths.root);
  const provisioningTls = serverCert(
    paths.provisioningKey,
    paths.provisioningCert,
    serverCa,
    'lenscap dev provisioning',
    host,
  );
  const brokerTls = serverCert(paths.brokerKey, paths.brokerCert, serverCa, 'lenscap dev broker', host);
  const cloudClientTls = loadOrIssue(
    paths.cloudClientKey,
    paths.cloudClientCert,
    deviceCa,
    (c) => /(?:^|\n)CN=lenscap-cloud(?:\n|$)/.test(c.subject),
    () => deviceCa.issueClient(CLOUD_CLIENT_CN),
  );
  // Created now, so the first camera does not pay for key generation and the files exist for the CLI.
  await loadOrCreateSigningKeys(paths.root);

  const service = await startProvisioningService({
    devDir: paths.root,
    deviceCa,
    brokerCaPem: serverCa.certPem,
    tls: provisioningTls,
    trust: async () => {
      const k = await loadOrCreateSigningKeys(paths.root);
      return { trustRootJwk: k.trustRootJwk, trustBundle: k.trustBundle };
    },
    host,
    port: opts.port,
    clock: opts.clock,
    logger: log,
    certOptions: opts.certOptions,
  });
  const createTokenFor = (serial: string, ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS) =>
    createTokenIn(paths.root, serial, ttlSeconds, opts.clock);
  return {
    devDir: paths.root,
    provisioningUrl: service.url,
    provisioningCaFile: paths.provisioningCaFile,
    caPem: serverCa.certPem,
    deviceCaPem: deviceCa.certPem,
    brokerTls,
    brokerCaPem: serverCa.certPem,
    cloudClientTls,
    service,
    createToken: (serial) => createTokenFor(serial),
    createTokenFor,
    close: () => service.close(),
  };
}

/** The brief's name for the same thing. */
export const startDevCloud = startDevCloudIdentity;
