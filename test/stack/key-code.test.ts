/**
 * The key code owners compare before signing a directory key (scripts/dev-cloud/key-code.ts; the
 * page's web/keys.js computes the same, cross-checked in the real Chromium by page-transfer):
 * the first 40 bits of the RFC 7638 thumbprint in base32, `ABCD-EFGH`; a different key, a
 * different code; a malformed thumbprint is an error, not a short code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { keyCode } from '../../scripts/dev-cloud/key-code.ts';
import { jwkThumbprint, parseSigningJwk } from '../../agent/owner/jwk.ts';

/** RFC 4648 base32 by bit string: a second, independent way to the same answer. */
function base32Prefix(bytes: Buffer, chars: number): string {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
  let out = '';
  for (let i = 0; i < chars; i++) out += A[parseInt(bits.slice(i * 5, i * 5 + 5), 2)];
  return out;
}

function p256Jkt(): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  return jwkThumbprint(parseSigningJwk({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }));
}

test('key code: first 40 bits of the thumbprint, base32, ABCD-EFGH', () => {
  // RFC 7638 §3.1's example thumbprint.
  const jkt = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
  const expect = base32Prefix(Buffer.from(jkt, 'base64url'), 8);
  assert.equal(keyCode(jkt), `${expect.slice(0, 4)}-${expect.slice(4)}`);
  assert.equal(keyCode(jkt), 'G43M-XMLY');
  for (let i = 0; i < 20; i++) {
    const j = p256Jkt();
    const e = base32Prefix(Buffer.from(j, 'base64url'), 8);
    assert.equal(keyCode(j), `${e.slice(0, 4)}-${e.slice(4)}`);
    assert.match(keyCode(j), /^[A-Z2-7]{4}-[A-Z2-7]{4}$/);
  }
});

test('key code: a swapped key shows another code', () => {
  const bob = p256Jkt();
  const mallory = p256Jkt();
  assert.notEqual(keyCode(bob), keyCode(mallory));
  assert.equal(keyCode(bob), keyCode(bob));
});

test('key code: a thumbprint too short to give 40 bits is refused', () => {
  assert.throws(() => keyCode('AAAA'), /too short/);
  assert.throws(() => keyCode(''), /too short/);
});
