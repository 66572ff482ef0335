/**
 * Where everything lives in the state directory. One place, so provisioning writes exactly what
 * the agent reads and docs/identity.md can point at one table. Paths only: no I/O here.
 *
 *   <stateDir>/                 0700
 *     identity/device.key       0600  RSA private key, PEM; never leaves the device
 *     identity/device.crt             device certificate (CN = serial), PEM
 *     identity/chain.pem              intermediate(s) up to the device CA, PEM (may be empty)
 *     identity/device-ca.pem          pinned device CA the cert must chain to
 *     identity/provisioning.json      {url, serial, provisionedAt}: where to renew
 *     cloud/broker-ca.pem             the only trust for the broker's TLS cert
 *     trust/root.jwk.json             pinned trust-root public key (JWK)
 *     trust/bundle.jws                trust bundle signed by the root
 *     trust/binding.jws               current binding record (absent: camera not claimed)
 *     trust/floors.json         0600  highest version ever installed, per signed-document kind (incl. membership)
 *     owner/claim-secret        0600  the label's claim code (never leaves the camera but on the label)
 *     owner/state.json          0600  owner-held trust: {format, epoch, signer, membership, floor, claimSeq}
 *     owner/reset.request             a local factory reset asked for (`lenscap reset`), done at once
 *     grants/replay.json              replay cache (used grant ids until they expire)
 *     audit/decisions.jsonl           append-only decision log (+ .1 after rotation)
 *     events/queue.jsonl              security events not yet delivered
 *     events/spool/<id>.sealed        sealed motion artifacts handed to the upload queue
 *     camera/testpattern-motion       test pattern motion hook (camera.testPatternMotionHook)
 *     events/uploads.json       0600  the upload queue's index: sealed artifacts not yet uploaded
 *     events/switch.json        0600  the owner's last cmd/events switch (wins over events.enabled)
 */
import { join } from 'node:path';

export function stateLayout(stateDir: string) {
  const identity = join(stateDir, 'identity');
  const trust = join(stateDir, 'trust');
  return {
    root: stateDir,
    identityDir: identity,
    deviceKey: join(identity, 'device.key'),
    deviceCert: join(identity, 'device.crt'),
    chain: join(identity, 'chain.pem'),
    deviceCa: join(identity, 'device-ca.pem'),
    provisioning: join(identity, 'provisioning.json'),
    cloudDir: join(stateDir, 'cloud'),
    brokerCa: join(stateDir, 'cloud', 'broker-ca.pem'),
    trustDir: trust,
    trustRoot: join(trust, 'root.jwk.json'),
    trustBundle: join(trust, 'bundle.jws'),
    binding: join(trust, 'binding.jws'),
    versionFloors: join(trust, 'floors.json'),
    ownerDir: join(stateDir, 'owner'),
    claimSecret: join(stateDir, 'owner', 'claim-secret'),
    ownerState: join(stateDir, 'owner', 'state.json'),
    resetRequest: join(stateDir, 'owner', 'reset.request'),
    grantsDir: join(stateDir, 'grants'),
    replayCache: join(stateDir, 'grants', 'replay.json'),
    auditDir: join(stateDir, 'audit'),
    auditLog: join(stateDir, 'audit', 'decisions.jsonl'),
    eventsDir: join(stateDir, 'events'),
    eventQueue: join(stateDir, 'events', 'queue.jsonl'),
    eventSpool: join(stateDir, 'events', 'spool'),
    testPatternMotion: join(stateDir, 'camera', 'testpattern-motion'),
    uploadIndex: join(stateDir, 'events', 'uploads.json'),
    eventsSwitch: join(stateDir, 'events', 'switch.json'),
  } as const;
}

export type StateLayout = ReturnType<typeof stateLayout>;
