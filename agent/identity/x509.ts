/**
 * Certificate facts the identity checks need, on Node's own X.509 parser (node:crypto): subject
 * CN, validity, key match and chain to a pinned CA. Pure functions over PEM text.
 * Must never accept a chain that does not end at the pinned CA, nor treat a non-CA as an issuer.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

export function parseCert(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

/** Every certificate in a PEM bundle (empty text → []). */
export function splitPemBundle(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export function commonName(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
}

export function validityMs(cert: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

export function privateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}

export function keyMatchesCert(key: KeyObject, cert: X509Certificate): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  return issuer.ca && child.checkIssued(issuer) && child.verify(issuer.publicKey);
}

/**
 * True when `leaf`, through the intermediates in `chain` (in any order), is signed by one of the
 * pinned CA certificates. Bounded depth; intermediates must be CAs.
 */
export function chainsTo(
  leaf: X509Certificate,
  chain: X509Certificate[],
  pinned: X509Certificate[],
): boolean {
  let current = leaf;
  for (let depth = 0; depth < 5; depth++) {
    if (pinned.some((ca) => issuedBy(current, ca))) return true;
    const next = chain.find((c) => c !== current && issuedBy(current, c));
    if (!next) return false;
    current = next;
  }
  return false;
}
