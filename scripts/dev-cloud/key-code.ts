/**
 * The short key code two people compare across their screens before an owner signs a key the
 * cloud's directory handed over (as Signal's safety numbers): the first 40 bits of the key's
 * RFC 7638 thumbprint (`jkt`), base32 (RFC 4648), shown as `ABCD-EFGH`. The page computes the same
 * in web/keys.js (`keyCode`). 40 bits is a comparison aid against a swapped key, not a secret: the
 * full thumbprint is shown beside it (docs/grants.md, "The key directory").
 * Must never be computed from anything but the public key's thumbprint.
 */
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function keyCode(jkt: string): string {
  const bytes = Buffer.from(jkt, 'base64url').subarray(0, 5);
  if (bytes.length !== 5) throw new Error('key code: thumbprint too short');
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = '';
  for (let i = 7; i >= 0; i--) out += B32[Number((n >> BigInt(i * 5)) & 31n)];
  return `${out.slice(0, 4)}-${out.slice(4)}`;
}
