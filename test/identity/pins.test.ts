/**
 * A pinned firmware image (certs/README.md, agent/identity/pins.ts): provisioning against a
 * service whose CA, trust root or broker CA does not chain to the pins is refused before anything
 * is installed; the same service with matching pins provisions; a state dir whose trust root was
 * swapped does not start; a pin folder holding a private key is refused; an unpinned checkout
 * (certs/ holds only its README) behaves as before.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../agent/clock.ts';
import { silentLogger } from '../../agent/log.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { TrustStore } from '../../agent/grants/trust-store.ts';
import {
  checkAgainstPins,
  defaultPinDir,
  loadPins,
  PIN_FILES,
  pinDirProblems,
} from '../../agent/identity/pins.ts';
import { provisionDevice } from '../../agent/identity/provision.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { devLayout } from '../../scripts/dev-cloud/layout.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { startDevCloudIdentity, type StartedDevCloudIdentity } from '../../scripts/dev-cloud/server.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const tmp = makeTempDir('lenscap-pins-');
let cloud: StartedDevCloudIdentity;
let realPins: string;
before(async () => {
  cloud = await startDevCloudIdentity({ devDir: join(tmp.dir, 'dev') });
  const keys = await loadOrCreateSigningKeys(join(tmp.dir, 'dev'));
  realPins = join(tmp.dir, 'pins-real');
  mkdirSync(realPins);
  writeFileSync(join(realPins, PIN_FILES.trustRoot), JSON.stringify(keys.trustRootJwk));
  writeFileSync(join(realPins, PIN_FILES.provisioningCa), cloud.caPem);
  writeFileSync(join(realPins, PIN_FILES.brokerCa), cloud.brokerCaPem);
});
after(async () => {
  await cloud?.close();
  tmp.cleanup();
});

function otherRootJwk() {
  const { publicKey } = generateKeyPairSync('ed25519');
  return { ...publicKey.export({ format: 'jwk' }), kid: 'root-other', alg: 'EdDSA', use: 'sig' };
}

function pinDir(name: string, files: Partial<Record<keyof typeof PIN_FILES, string>>): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir);
  for (const [k, v] of Object.entries(files))
    writeFileSync(join(dir, PIN_FILES[k as keyof typeof PIN_FILES]), v);
  return dir;
}

async function provision(serial: string, pins: ReturnType<typeof loadPins> | null, caPem = cloud.caPem) {
  const stateDir = join(tmp.dir, `cam-${serial}`);
  const lines: string[] = [];
  try {
    await provisionDevice({
      serial,
      token: await cloud.createToken(serial),
      url: cloud.provisioningUrl,
      caPem,
      stateDir,
      clock: systemClock,
      out: (l) => void lines.push(l),
      pins,
    });
    return { code: 'ok', stateDir };
  } catch (err) {
    return {
      code: (err as { code?: string }).code ?? String(err),
      message: (err as Error).message,
      stateDir,
    };
  }
}

test('the checkout is an unpinned image: certs/ holds only its README', () => {
  assert.ok(existsSync(join(defaultPinDir(), 'README.md')));
  assert.equal(loadPins(), undefined);
  assert.deepEqual(pinDirProblems(defaultPinDir()), []);
});

test("an image's certs/ is found from the tsc tree and from any chunk of the esbuild bundle", () => {
  for (const at of [
    'file:///opt/lenscap/dist/agent/identity/pins.js',
    'file:///opt/lenscap/dist/bundle/chunks/chunk-ABCD1234.js',
    'file:///opt/lenscap/dist/bundle/agent/main.js',
  ])
    assert.equal(defaultPinDir(at), '/opt/lenscap/certs/', at);
  // A checkout: agent/identity/pins.ts → the repository's certs/.
  assert.equal(defaultPinDir('file:///src/lenscap/agent/identity/pins.ts'), '/src/lenscap/certs/');
});

test('matching pins provision; a pinned root or broker CA that does not match refuses before installing', async () => {
  const ok = await provision('CAM-PIN1', loadPins(realPins));
  assert.equal(ok.code, 'ok');

  const wrongRoot = await provision(
    'CAM-PIN2',
    loadPins(pinDir('pins-root', { trustRoot: JSON.stringify(otherRootJwk()) })),
  );
  assert.equal(wrongRoot.code, 'ERR_TRUST_PIN_MISMATCH');
  assert.match(wrongRoot.message!, /the trust root does not chain to the root pinned/);
  const paths = stateLayout(wrongRoot.stateDir);
  assert.equal(existsSync(paths.trustRoot), false, 'nothing installed');
  assert.equal(existsSync(paths.deviceKey), false, 'nothing installed');

  const wrongBroker = await provision(
    'CAM-PIN3',
    loadPins(pinDir('pins-broker', { brokerCa: DevCa.create('another broker CA').certPem })),
  );
  assert.equal(wrongBroker.code, 'ERR_TRUST_PIN_MISMATCH');
  assert.match(wrongBroker.message!, /the broker CA/);
  assert.equal(existsSync(stateLayout(wrongBroker.stateDir).brokerCa), false);
});

test('a pinned provisioning CA: --ca must be it (or issued by it), checked before any network traffic', async () => {
  const other = DevCa.create('some other server CA');
  const r = await provision('CAM-PIN4', loadPins(pinDir('pins-prov', { provisioningCa: other.certPem })));
  assert.equal(r.code, 'ERR_TRUST_PIN_MISMATCH');
  assert.match(r.message!, /the provisioning CA \(--ca\)/);
  // A CA issued by the pinned one passes the pin check (chains to it).
  const root = DevCa.create('pinned root CA');
  assert.doesNotThrow(() =>
    checkAgainstPins({ dir: 'x', provisioningCaPem: root.certPem }, { provisioningCaPem: root.certPem }),
  );
});

test('a pinned image does not start on a swapped trust root in its state dir', async () => {
  const devDir = join(tmp.dir, 'dev');
  const paths = stateLayout(join(tmp.dir, 'cam-CAM-PIN1'));
  const load = (pins: ReturnType<typeof loadPins> | null) =>
    TrustStore.load({
      pins,
      serial: 'CAM-PIN1',
      paths,
      clock: systemClock,
      logger: silentLogger(),
      events: new MemoryEventSink(),
    });
  assert.doesNotThrow(() => load(loadPins(realPins)));
  assert.doesNotThrow(() => load(null), 'unpinned: as before');
  const pinnedElsewhere = loadPins(pinDir('pins-start', { trustRoot: JSON.stringify(otherRootJwk()) }));
  assert.throws(() => load(pinnedElsewhere), /ERR_TRUST_PIN_MISMATCH|does not chain to the root pinned/);
  assert.ok(readFileSync(devLayout(devDir).provisioningCaFile, 'utf8').includes('BEGIN CERTIFICATE'));
});

test('a pin folder holding a private key (PEM or JWK "d") or a stray file is refused', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const dir = pinDir('pins-secret', {});
  writeFileSync(join(dir, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  writeFileSync(join(dir, PIN_FILES.trustRoot), JSON.stringify(privateKey.export({ format: 'jwk' })));
  const problems = pinDirProblems(dir);
  assert.ok(
    problems.some((p) => p.startsWith('key.pem: holds a private key')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.includes('its private part')),
    problems.join('\n'),
  );
  assert.throws(() => loadPins(dir), /ERR_PIN_INVALID|refused/);
  const stray = pinDir('pins-stray', {});
  writeFileSync(join(stray, 'notes.txt'), 'hello');
  assert.match(pinDirProblems(stray)[0]!, /notes\.txt: not a pin file/);
});
