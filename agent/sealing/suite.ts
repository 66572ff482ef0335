/**
 * The HPKE suite (RFC 9180) that wraps a session's content key to a viewer, and the byte labels
 * that bind the envelope and frames. @hpke/core on WebCrypto: the same code runs in Node 20 and in
 * the browser Worker. DHKEM(X25519, HKDF-SHA256) by default, DHKEM(P-256, HKDF-SHA256) when the
 * viewer's key is a P-256 JWK; HKDF-SHA256; AES-128-GCM.
 * @hpke/core is loaded on first use, not at start: an idle camera (no sealed push, events off)
 * does not keep its ~40 modules resident (issue 18's idle memory).
 * Must never hand-roll key agreement or choose a suite the viewer's key does not name.
 */
import type { CipherSuite } from '@hpke/core';

export const SEAL_VERSION = 1;
export const HPKE_INFO = new TextEncoder().encode('lenscap-seal/1 content key');
export const FRAME_LABEL = new TextEncoder().encode('lenscap-seal/1 frame');

export type KemName = 'X25519' | 'P-256';

/** 1 = X25519, 2 = P-256: the byte in the envelope naming the KEM. */
export const KEM_IDS: Record<KemName, number> = { X25519: 1, 'P-256': 2 };

const suites = new Map<KemName, Promise<CipherSuite>>();

export function suiteFor(kem: KemName): Promise<CipherSuite> {
  let s = suites.get(kem);
  if (!s) {
    s = import('@hpke/core').then(
      (h) =>
        new h.CipherSuite({
          kem: kem === 'X25519' ? new h.DhkemX25519HkdfSha256() : new h.DhkemP256HkdfSha256(),
          kdf: new h.HkdfSha256(),
          aead: new h.Aes128Gcm(),
        }),
    );
    // A failed load is not kept: the next use tries again.
    s.catch(() => suites.delete(kem));
    suites.set(kem, s);
  }
  return s;
}

/** Which KEM a public JWK names, or undefined for anything else (refused upstream). */
export function kemOfJwk(jwk: JsonWebKey): KemName | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'X25519') return 'X25519';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'P-256';
  return undefined;
}

export function kemById(id: number): KemName | undefined {
  return id === 1 ? 'X25519' : id === 2 ? 'P-256' : undefined;
}
