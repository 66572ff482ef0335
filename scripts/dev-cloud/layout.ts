/**
 * Where the dev cloud keeps its state (default ./.lenscap/dev, git-ignored). One place, so the
 * service, the `dev-cloud token` verb and tests agree. Paths only: no I/O here.
 *
 *   <devDir>/                     0700
 *     ca/device-ca.{key,crt}      device CA (signs device CSRs, the cloud's client cert)   key 0600
 *     ca/server-ca.{key,crt}      server CA (signs the broker's and the service's TLS certs) key 0600
 *     ca/provisioning.{key,crt}   the provisioning service's TLS cert (server CA)
 *     ca/broker.{key,crt}         the broker's TLS cert (server CA)
 *     ca/cloud-client.{key,crt}   the dev cloud's MQTT identity, CN lenscap-cloud (device CA)
 *     keys/                       trust root, grant-issuer and binding keys (signing-keys.ts)
 *     provisioning/tokens/<sha256(token)>.json   one file per one-time token (the token itself is never stored)
 */
import { join, resolve } from 'node:path';

export const DEFAULT_DEV_DIR = join('.lenscap', 'dev');

export function devLayout(devDir: string = DEFAULT_DEV_DIR) {
  const root = resolve(devDir);
  const ca = join(root, 'ca');
  return {
    root,
    caDir: ca,
    /** What a technician passes as `lenscap provision --ca`. */
    provisioningCaFile: join(ca, 'server-ca.crt'),
    deviceCaFile: join(ca, 'device-ca.crt'),
    provisioningKey: join(ca, 'provisioning.key'),
    provisioningCert: join(ca, 'provisioning.crt'),
    brokerKey: join(ca, 'broker.key'),
    brokerCert: join(ca, 'broker.crt'),
    cloudClientKey: join(ca, 'cloud-client.key'),
    cloudClientCert: join(ca, 'cloud-client.crt'),
    tokensDir: join(root, 'provisioning', 'tokens'),
  } as const;
}

export type DevLayout = ReturnType<typeof devLayout>;
