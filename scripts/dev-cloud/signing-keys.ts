/**
 * The dev cloud's signing keys: the trust root (pinned by cameras at provisioning), the Ed25519
 * grant-issuer key and the Ed25519 binding key, each with a kid, plus the trust bundle the root
 * signs. Created once under <devDir>/keys (private parts 0600) and reused.
 * Development and tests only: a real cloud keeps the root offline and these keys in an HSM.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { signCompact } from '../../agent/grants/jws.ts';
import { TRUST_BUNDLE_TYP } from '../../agent/grants/trust-bundle.ts';
import { fsyncDir, writeFileAtomic } from '../../agent/storage/atomic-file.ts';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

export interface DevSigningKeys {
  root: SigningKey;
  issuer: SigningKey;
  binding: SigningKey;
  /** Public JWK of the root: what a camera pins. */
  trustRootJwk: Record<string, unknown>;
  /** The current trust bundle (compact JWS signed by the root). */
  trustBundle: string;
  trustVersion: number;
}

type Role = 'root' | 'issuer' | 'binding';

function newKey(role: Role): SigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const kid = `${role}-${randomBytes(6).toString('hex')}`;
  return { kid, privateKey, publicJwk: publicJwk(privateKey, kid) };
}

function publicJwk(privateKey: KeyObject, kid: string): Record<string, unknown> {
  return { ...createPublicKey(privateKey).export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' };
}

function saveKey(dir: string, role: Role, key: SigningKey): void {
  const jwk = { ...key.privateKey.export({ format: 'jwk' }), kid: key.kid };
  writeFileAtomic(join(dir, `${role}.jwk.json`), JSON.stringify(jwk), 0o600);
}

/**
 * Writes `path` only if it does not exist yet, atomically (temp file + link): when two processes
 * (the dev cloud and a `dev-cloud grant` run) create keys at once, the first one wins and the
 * other loads the winner's, so nobody signs with a key the trust bundle does not list.
 */
function createOnce(path: string, data: string, mode: number): boolean {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    fsyncDir(dirname(path));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function bundleVersion(jws: string): number {
  const version = (
    JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as { version?: unknown }
  ).version;
  if (typeof version !== 'number') throw new Error('dev trust bundle without a version');
  return version;
}

function loadKey(dir: string, role: Role): SigningKey | undefined {
  const file = join(dir, `${role}.jwk.json`);
  if (!existsSync(file)) return undefined;
  const jwk = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { kid: string };
  const privateKey = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  return { kid: jwk.kid, privateKey, publicJwk: publicJwk(privateKey, jwk.kid) };
}

/** Signs a trust bundle listing the given issuer and binding keys. */
export function signTrustBundle(
  root: SigningKey,
  version: number,
  issuerKeys: SigningKey[],
  bindingKeys: SigningKey[],
): string {
  return signCompact(
    { alg: 'EdDSA', typ: TRUST_BUNDLE_TYP, kid: root.kid },
    {
      version,
      iat: Math.floor(Date.now() / 1000),
      issuerKeys: { keys: issuerKeys.map((k) => k.publicJwk) },
      bindingKeys: { keys: bindingKeys.map((k) => k.publicJwk) },
    },
    root.privateKey,
  );
}

export function keysDir(devDir: string): string {
  return join(devDir, 'keys');
}

export async function loadOrCreateSigningKeys(devDir: string): Promise<DevSigningKeys> {
  const dir = keysDir(devDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = {} as Record<Role, SigningKey>;
  for (const role of ['root', 'issuer', 'binding'] as const) {
    let k = loadKey(dir, role);
    if (!k) {
      const fresh = newKey(role);
      const jwk = { ...fresh.privateKey.export({ format: 'jwk' }), kid: fresh.kid };
      k = createOnce(join(dir, `${role}.jwk.json`), JSON.stringify(jwk), 0o600) ? fresh : loadKey(dir, role)!;
    }
    keys[role] = k;
  }
  const bundleFile = join(dir, 'trust-bundle.jws');
  if (!existsSync(bundleFile))
    createOnce(bundleFile, signTrustBundle(keys.root, 1, [keys.issuer], [keys.binding]), 0o644);
  const trustBundle = readFileSync(bundleFile, 'utf8');
  const trustVersion = bundleVersion(trustBundle);
  return { ...keys, trustRootJwk: keys.root.publicJwk, trustBundle, trustVersion };
}

/**
 * Key rotation: a new issuer key (and, with `binding: true`, a new binding key) in a bundle with
 * a higher version. The old keys are dropped from the bundle, so grants they signed stop verifying.
 */
export async function rotateSigningKeys(
  devDir: string,
  opts: { binding?: boolean } = {},
): Promise<DevSigningKeys> {
  const current = await loadOrCreateSigningKeys(devDir);
  const dir = keysDir(devDir);
  const issuer = newKey('issuer');
  saveKey(dir, 'issuer', issuer);
  let binding = current.binding;
  if (opts.binding) {
    binding = newKey('binding');
    saveKey(dir, 'binding', binding);
  }
  const trustVersion = current.trustVersion + 1;
  const trustBundle = signTrustBundle(current.root, trustVersion, [issuer], [binding]);
  writeFileAtomic(join(dir, 'trust-bundle.jws'), trustBundle, 0o644);
  return { ...current, issuer, binding, trustBundle, trustVersion };
}
