/**
 * The trust bundle: which keys may sign grants (issuerKeys) and binding records (bindingKeys),
 * signed by the trust root the camera pinned at provisioning. Rotation = a new bundle with a
 * higher version. Must never accept a bundle the pinned root did not sign.
 */
import { z } from 'zod';
import { LenscapError } from '../errors.ts';
import { importKeySet, importPublicJwk, JwsError, type VerificationKey } from './jws.ts';
import { verifySignedDocument } from './signed-document.ts';

export const TRUST_BUNDLE_TYP = 'lenscap-trust+jwt';

const jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(32) });
const trustBundlePayload = z.object({
  version: z.number().int().positive(),
  iat: z.number().int().nonnegative(),
  issuerKeys: jwks,
  bindingKeys: jwks,
});

export interface TrustBundle {
  version: number;
  iat: number;
  issuerKeys: Map<string, VerificationKey>;
  bindingKeys: Map<string, VerificationKey>;
}

export function importTrustRoot(rootJwk: unknown): Map<string, VerificationKey> {
  try {
    const root = importPublicJwk(rootJwk as Record<string, unknown>);
    return new Map([[root.kid, root]]);
  } catch (err) {
    if (err instanceof JwsError)
      throw new LenscapError('ERR_TRUST_ROOT_INVALID', `trust root: ${err.message}`);
    throw err;
  }
}

/**
 * Verifies a trust bundle against the pinned root. `minVersion`: the bundle must be newer than the
 * one installed (no rollback to a bundle listing a retired, perhaps leaked, key).
 */
export function verifyTrustBundle(
  jws: string,
  rootJwk: unknown,
  opts: { minVersion?: number } = {},
): TrustBundle {
  const { payload } = verifySignedDocument(jws, {
    typ: TRUST_BUNDLE_TYP,
    keys: importTrustRoot(rootJwk),
    schema: trustBundlePayload,
    errorCode: 'ERR_TRUST_BUNDLE_INVALID',
    what: 'trust bundle',
  });
  if (opts.minVersion !== undefined && payload.version <= opts.minVersion) {
    throw new LenscapError(
      'ERR_TRUST_BUNDLE_ROLLBACK',
      `trust bundle version ${payload.version} is not newer than installed ${opts.minVersion}`,
    );
  }
  try {
    const issuerKeys = importKeySet(payload.issuerKeys, 'issuerKeys');
    const bindingKeys = importKeySet(payload.bindingKeys, 'bindingKeys');
    for (const kid of issuerKeys.keys()) {
      // One key in both roles would let whoever mints grants also authorise viewers.
      if (bindingKeys.has(kid))
        throw new JwsError('malformed', `kid ${kid} is both an issuer and a binding key`);
    }
    // Compared by key material, not by kid: the same key under another kid is the same key.
    const spki = (k: VerificationKey) => k.key.export({ format: 'der', type: 'spki' }).toString('base64');
    const root = [...importTrustRoot(rootJwk).values()].map(spki);
    const issuers = new Map([...issuerKeys.values()].map((k) => [spki(k), k.kid]));
    for (const k of bindingKeys.values()) {
      const material = spki(k);
      if (issuers.has(material))
        throw new JwsError('malformed', `binding key ${k.kid} is also issuer key ${issuers.get(material)}`);
      // The root only signs bundles: a root that also signed bindings could not be kept offline.
      if (root.includes(material)) throw new JwsError('malformed', `binding key ${k.kid} is the trust root`);
    }
    for (const [material, kid] of issuers)
      // A root that also mints grants must sit on the issuing servers: its leak would let anyone
      // both mint grants and sign the bundle that no rotation could ever retire.
      if (root.includes(material)) throw new JwsError('malformed', `issuer key ${kid} is the trust root`);
    return { version: payload.version, iat: payload.iat, issuerKeys, bindingKeys };
  } catch (err) {
    if (err instanceof JwsError)
      throw new LenscapError('ERR_TRUST_BUNDLE_INVALID', `trust bundle refused: ${err.message}`);
    throw err;
  }
}
