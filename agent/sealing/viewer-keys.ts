/**
 * Where a push session learns the public key it seals to: the viewer named in the grant (`sub`),
 * looked up in the owner-signed membership (issue 14) — never a key carried by the grant or
 * supplied by the cloud. This file is only the interface and a fixed-map source for tests and the
 * dev stack; the membership room provides the real one.
 * Must never return a key for a viewer the source does not list (no fallback, no default key).
 */
export interface ViewerHpkeKey {
  /** The key's id in the membership (it travels in the clear in the envelope). */
  kid: string;
  /** Public key as a JWK (X25519 `OKP` or P-256 `EC`), no private members. */
  publicKey: JsonWebKey;
}

export interface ViewerKeySource {
  hpkeKeyFor(sub: string): ViewerHpkeKey | undefined;
}

/** A source that knows nobody: push is refused (`viewer_key_missing`) until a membership exists. */
export const noViewerKeys: ViewerKeySource = { hpkeKeyFor: () => undefined };

/** A fixed map (tests, dev stack). Private members in a JWK are refused, not silently dropped. */
export function mapViewerKeys(keys: Record<string, ViewerHpkeKey>): ViewerKeySource {
  for (const [sub, k] of Object.entries(keys))
    if ('d' in k.publicKey) throw new TypeError(`viewer key for ${sub} carries a private member`);
  const m = new Map(Object.entries(keys));
  return { hpkeKeyFor: (sub) => m.get(sub) };
}

/**
 * The membership room's answer (agent/owner `OwnerTrust.viewerKey`) as a key source: the current
 * verified owner-signed membership's HPKE key for `sub`, its RFC 7638 thumbprint as the kid.
 */
export function membershipViewerKeys(owner: {
  viewerKey(sub: string): { kid: string; jwk: { kty: string; crv: string; x: string } } | undefined;
}): ViewerKeySource {
  return {
    hpkeKeyFor: (sub) => {
      const k = owner.viewerKey(sub);
      return k ? { kid: k.kid, publicKey: { kty: k.jwk.kty, crv: k.jwk.crv, x: k.jwk.x } } : undefined;
    },
  };
}
