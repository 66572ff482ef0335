/**
 * Fast PKI fixture for tests: a device CA, a server CA with a broker/server cert for 127.0.0.1, and
 * N device certs (CN = serial), all made at run time with scripts/dev-cloud/ca.ts and written to a
 * temp dir. Never written into the repository.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
