/**
 * Identity test fixture: writes a device identity issued by a test DevCa into a state dir laid out
 * as state-layout.ts says, with the permissions provisioning would set. Run-time keys only.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { stateLayout, type StateLayout } from '../../agent/state-layout.ts';
import type { DevCa, IssuedPem } from '../../scripts/dev-cloud/ca.ts';

export function writeIdentity(
  root: string,
  ca: DevCa,
  pem: IssuedPem,
  brokerCaPem = ca.certPem,
): StateLayout {
  const paths = stateLayout(root);
  for (const d of [root, paths.identityDir, paths.cloudDir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(d, 0o700);
  }
  writeFileSync(paths.deviceKey, pem.key, { mode: 0o600 });
  writeFileSync(paths.deviceCert, pem.cert);
  writeFileSync(paths.chain, '');
  writeFileSync(paths.deviceCa, ca.certPem);
  writeFileSync(paths.brokerCa, brokerCaPem);
  return paths;
}
