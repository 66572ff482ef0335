/**
 * What a firmware image pins (certs/README.md): the trust-root public key, the provisioning CA and
 * the broker CA, embedded by `npm run bundle -- --pin DIR` into the image's certs/ folder. An image
 * without pins (a checkout, or a bundle built without --pin) trusts what provisioning delivers, as
 * before. A pinned image accepts trust material arriving later only when it is, or chains to, the
 * pinned roots: the trust root must be the pinned key itself (rotation of issuer and binding keys
 * happens through bundles signed by it), the broker CA and the `--ca` given to provisioning must be
 * the pinned CA or be issued by it.
 * Must never accept a pin file holding private key material, and never fall back to "unpinned"
 * when a pin file exists but cannot be read.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LenscapError } from '../errors.ts';
import { importTrustRoot } from '../grants/trust-bundle.ts';
import { chainsTo, splitPemBundle } from './x509.ts';

export const PIN_FILES = {
  trustRoot: 'trust-root.jwk.json',
  provisioningCa: 'provisioning-ca.pem',
  brokerCa: 'broker-ca.pem',
} as const;
/** Files certs/ (or a pin dir) may hold besides the pins. */
const DOC_FILES = new Set(['README.md', '.gitkeep']);

export interface Pins {
  dir: string;
  trustRootJwk?: Record<string, unknown>;
  provisioningCaPem?: string;
  brokerCaPem?: string;
}

/**
 * The image's certs/ folder: next to agent/ in a checkout (../../certs from agent/identity), next
 * to dist/ in a firmware image, whichever file under dist/ holds this code (the tsc tree's
 * dist/agent/identity/pins.js or a chunk of the esbuild bundle, dist/bundle/chunks/*.js).
 */
export function defaultPinDir(moduleUrl: string = import.meta.url): string {
  const here = fileURLToPath(moduleUrl);
  const image = /^(.*[\\/])dist[\\/](?:agent[\\/]identity|bundle[\\/])/.exec(here);
  return image ? join(image[1]!, 'certs') + sep : fileURLToPath(new URL('../../certs/', moduleUrl));
}

/**
 * Every reason `dir` is not a folder of public pins: private key material (PEM private keys, a
 * JWK with a private part), unknown files. Used by the bundle step (refuses the build) and by
 * loadPins (refuses to start).
 */
export function pinDirProblems(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const problems: string[] = [];
  const known = new Set<string>(Object.values(PIN_FILES));
  for (const ent of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!ent.isFile()) continue;
    const path = join(ent.parentPath ?? dir, ent.name);
    const rel = path.slice(dir.length).replace(/^[\\/]/, '');
    const text = readFileSync(path, 'latin1');
    if (/-{5}BEGIN [A-Z ]*PRIVATE KEY-{5}/.test(text))
      problems.push(`${rel}: holds a private key (a firmware image pins public material only)`);
    else if (/"d"\s*:/.test(text) && /"kty"\s*:/.test(text))
      problems.push(`${rel}: a JWK with its private part ("d"); pin the public key only`);
    else if (!known.has(rel) && !DOC_FILES.has(rel))
      problems.push(`${rel}: not a pin file (${Object.values(PIN_FILES).join(', ')})`);
  }
  return problems;
}

/** The pins in `dir`, or undefined when it holds none (an unpinned image). */
export function loadPins(dir: string = defaultPinDir()): Pins | undefined {
  const problems = pinDirProblems(dir);
  if (problems.length)
    throw new LenscapError('ERR_PIN_INVALID', `pinned trust in ${dir} refused: ${problems.join('; ')}`);
  const read = (f: string) => {
    const p = join(dir, f);
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
  };
  const root = read(PIN_FILES.trustRoot);
  const provisioningCaPem = read(PIN_FILES.provisioningCa);
  const brokerCaPem = read(PIN_FILES.brokerCa);
  if (root === undefined && provisioningCaPem === undefined && brokerCaPem === undefined) return undefined;
  let trustRootJwk: Record<string, unknown> | undefined;
  try {
    if (root !== undefined) {
      trustRootJwk = JSON.parse(root) as Record<string, unknown>;
      importTrustRoot(trustRootJwk);
    }
    for (const pem of [provisioningCaPem, brokerCaPem]) if (pem) caCerts(pem, 'pinned CA');
  } catch (err) {
    throw new LenscapError(
      'ERR_PIN_INVALID',
      `pinned trust in ${dir} is unreadable: ${(err as Error).message}`,
    );
  }
  return {
    dir,
    ...(trustRootJwk ? { trustRootJwk } : {}),
    ...(provisioningCaPem ? { provisioningCaPem } : {}),
    ...(brokerCaPem ? { brokerCaPem } : {}),
  };
}

function caCerts(pem: string, what: string): X509Certificate[] {
  const certs = splitPemBundle(pem).map((p) => new X509Certificate(p));
  if (certs.length === 0) throw new Error(`${what}: no certificate`);
  return certs;
}

function spki(jwk: Record<string, unknown>): string {
  return [...importTrustRoot(jwk).values()][0]!.key
    .export({ format: 'der', type: 'spki' })
    .toString('base64');
}

/** True when every certificate in `pem` is a pinned CA or issued by one (through the others in it). */
function chainsToPinned(pem: string, pinnedPem: string): boolean {
  const pinned = caCerts(pinnedPem, 'pinned CA');
  const certs = caCerts(pem, 'delivered CA');
  return certs.every(
    (c) => pinned.some((p) => p.fingerprint256 === c.fingerprint256) || chainsTo(c, certs, pinned),
  );
}

/**
 * Refuses trust material that does not match the image's pins (ERR_TRUST_PIN_MISMATCH, naming
 * which). Absent pins or absent material: nothing to check.
 */
export function checkAgainstPins(
  pins: Pins | undefined,
  m: { trustRootJwk?: unknown; brokerCaPem?: string; provisioningCaPem?: string },
): void {
  if (!pins) return;
  const fail = (what: string) =>
    new LenscapError(
      'ERR_TRUST_PIN_MISMATCH',
      `${what} does not chain to the root pinned in this firmware image (${pins.dir}); refusing it. A pinned image rotates keys only through a trust bundle signed by the pinned root`,
      { what },
    );
  if (pins.trustRootJwk && m.trustRootJwk !== undefined) {
    let same: boolean;
    try {
      same = spki(m.trustRootJwk as Record<string, unknown>) === spki(pins.trustRootJwk);
    } catch {
      same = false;
    }
    if (!same) throw fail('the trust root');
  }
  const ca = (pem: string | undefined, pinned: string | undefined, what: string) => {
    if (!pem || !pinned) return;
    let ok: boolean;
    try {
      ok = chainsToPinned(pem, pinned);
    } catch {
      ok = false;
    }
    if (!ok) throw fail(what);
  };
  ca(m.brokerCaPem, pins.brokerCaPem, 'the broker CA');
  ca(m.provisioningCaPem, pins.provisioningCaPem, 'the provisioning CA (--ca)');
}
