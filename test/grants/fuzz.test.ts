/**
 * Property-based fuzzing of hostile grants: start from a real valid grant for this camera and
 * mutate it (bit flips, claim swaps, re-encodings, header tricks, look-alike serials, whitespace,
 * case, oversize fields). Thousands of cases per run; the only acceptable accept is the untouched
 * original — every mutation must be refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { signCompact } from '../../agent/grants/jws.ts';
import { GRANT_TYP, verifyGrant, type GrantPolicy, type GrantState } from '../../agent/grants/verify.ts';
import { TrustStore } from '../../agent/grants/trust-store.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { silentLogger } from '../../agent/log.ts';
import { makeGrantFixture, NOW_MS, OWNER, SERIAL } from '../../harness/grants-fixture.ts';

test('thousands of mutated and hostile grants: zero accepted', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const trust = TrustStore.load({
    serial: SERIAL,
    paths: f.paths,
    clock: f.clock,
    logger: silentLogger(),
    events: new MemoryEventSink(),
  });
  const policy: GrantPolicy = {
    serial: SERIAL,
    issuer: 'https://cloud.lenscap.dev',
    algorithms: ['EdDSA'],
    maxLifetimeSeconds: 600,
    clockToleranceSeconds: 30,
    maxTokenBytes: 4096,
    buildTimeMs: Date.parse('2026-11-01T00:00:00Z'),
    relayAllowList: [],
  };
  const state: GrantState = {
    issuerKeys: trust.issuerKeys,
    isPrivacyOn: () => false,
    isClaimed: () => true,
    isBound: (sub) => trust.isBound(sub),
    isReplayed: () => false,
  };
  const valid = f.mint({ jti: 'fixed-jti' });
  const decide = (token: string) =>
    verifyGrant(token, { source: 'fuzz', purpose: 'view' }, policy, state, NOW_MS);
  assert.equal(decide(valid).ok, true, 'the unmutated grant is accepted (the oracle works)');

  const [h, p, s] = valid.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const stranger = (await import('node:crypto')).generateKeyPairSync('ed25519').privateKey;
  let accepted = 0;
  let cases = 0;
  const check = (token: string) => {
    cases++;
    if (token === valid) return;
    const d = decide(token);
    if (d.ok) accepted++;
    assert.equal(d.ok, false, `accepted a mutation: ${token.slice(0, 120)}`);
  };

  // 1. Bit flips anywhere in the token text.
  fc.assert(
    fc.property(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 127 }), (pos, x) => {
      const c = String.fromCharCode((valid.charCodeAt(pos) ^ x) & 0x7f);
      check(valid.slice(0, pos) + c + valid.slice(pos + 1));
    }),
    { numRuns: 3000 },
  );

  // 2. Signed-over-but-modified claims re-using the original signature (claim swaps).
  const claimValue = fc.oneof(
    fc.string(),
    fc.integer(),
    fc.constant(null),
    fc.array(fc.string()),
    fc.constant(SERIAL),
    fc.constant(OWNER),
  );
  fc.assert(
    fc.property(fc.constantFrom(...Object.keys(claims), 'relay', 'nbf', 'scope'), claimValue, (k, v) => {
      check(`${h}.${enc({ ...claims, [k]: v })}.${s}`);
    }),
    { numRuns: 1500 },
  );

  // 3. Look-alike audiences, properly signed by the real issuer: byte-for-byte comparison only.
  const lookAlikes = fc.oneof(
    fc.constantFrom(
      SERIAL.toLowerCase(),
      ` ${SERIAL}`,
      `${SERIAL} `,
      `${SERIAL}\n`,
      `${SERIAL}\u0000`,
      SERIAL.replace('C', '\u0421'),
      SERIAL.replace('A', '\u0391'),
      SERIAL.replace('M', '\u041c'),
      SERIAL.replace('0', '\u0030\u0301'),
      SERIAL.replace('1', '\uff11'),
      SERIAL.normalize('NFKD') + '\u200b',
      `${SERIAL},CAM-0002`,
      'CAM-0002',
      '',
    ),
    fc.string({ minLength: 1, maxLength: 20 }).filter((x) => x !== SERIAL),
    fc
      .tuple(fc.nat(SERIAL.length - 1), fc.string({ minLength: 1, maxLength: 2 }))
      .map(([i, ch]) => SERIAL.slice(0, i) + ch + SERIAL.slice(i + 1))
      .filter((x) => x !== SERIAL),
  );
  fc.assert(
    fc.property(lookAlikes, (aud) => {
      check(f.mint({ serial: aud, jti: 'x' }));
      check(signCompact({ ...header }, { ...claims, aud: [aud, SERIAL] }, f.keys.issuer.privateKey));
    }),
    { numRuns: 800 },
  );

  // 4. Header tricks, signed by the real issuer key or by a stranger.
  const headerTrick = fc.record(
    {
      alg: fc.constantFrom('none', 'None', 'HS256', 'RS256', 'ES256', 'EdDSA', 'eddsa', ''),
      typ: fc.constantFrom(
        GRANT_TYP,
        'JWT',
        'LENSCAP-GRANT+JWT',
        'lenscap-binding+jwt',
        'lenscap-trust+jwt',
        undefined,
      ),
      kid: fc.constantFrom(
        f.keys.issuer.kid,
        f.keys.binding.kid,
        f.keys.root.kid,
        '',
        '../../etc/passwd',
        undefined,
      ),
      jwk: fc.constantFrom(undefined, f.keys.issuer.publicJwk),
      crit: fc.constantFrom(undefined, ['exp']),
      jku: fc.constantFrom(undefined, 'https://evil.example/jwks.json'),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(headerTrick, fc.boolean(), (hd, byStranger) => {
      const full = { ...header, ...hd };
      const isExactlyValid =
        full.alg === 'EdDSA' &&
        full.typ === GRANT_TYP &&
        full.kid === f.keys.issuer.kid &&
        !hd.jwk &&
        !hd.crit &&
        !hd.jku &&
        !byStranger;
      if (isExactlyValid) return;
      const key = byStranger ? stranger : f.keys.issuer.privateKey;
      let token: string;
      try {
        token = full.alg === 'EdDSA' ? signCompact(full, claims, key) : `${enc(full)}.${p}.${s}`;
      } catch {
        return;
      }
      check(token);
    }),
    { numRuns: 1500 },
  );

  // 5. Re-encodings and whitespace around or inside the token; oversize fields.
  fc.assert(
    fc.property(
      fc.constantFrom(' ', '\n', '\t', '=', '+', '/', '.', '%20', '\u00a0'),
      fc.nat(valid.length),
      (ws, pos) => {
        check(valid.slice(0, pos) + ws + valid.slice(pos));
      },
    ),
    { numRuns: 1000 },
  );
  check(valid.toUpperCase());
  check(Buffer.from(valid).toString('base64'));
  check(`${h}.${Buffer.from(p, 'base64url').toString('base64')}.${s}`);
  fc.assert(
    fc.property(
      fc.constantFrom('sub', 'jti', 'iss', 'scope'),
      fc.integer({ min: 200, max: 5000 }),
      (k, n) => {
        check(signCompact(header, { ...claims, [k]: 'x'.repeat(n) }, f.keys.issuer.privateKey));
      },
    ),
    { numRuns: 200 },
  );

  // 6. Properly signed by the real issuer, but with the claims' values swapped between claims, or
  //    with case changes in the string claims: the semantic checks alone must refuse them.
  const keysOf = ['iss', 'aud', 'sub', 'jti', 'iat', 'exp', 'scope'] as const;
  fc.assert(
    fc.property(fc.shuffledSubarray([...keysOf], { minLength: 2 }), (picked) => {
      const swapped = { ...claims };
      const rotatedValues = picked.map((k) => claims[k]);
      rotatedValues.push(rotatedValues.shift());
      picked.forEach((k, i) => (swapped[k] = rotatedValues[i]));
      if (picked.every((k) => swapped[k] === claims[k])) return;
      // jti is free text: a swap that only moves a value into jti (and a valid one out) is harmless.
      if (picked.every((k) => k === 'jti' || swapped[k] === claims[k])) return;
      check(signCompact(header, swapped, f.keys.issuer.privateKey));
    }),
    { numRuns: 300 },
  );
  const flipCase = (v: string, mask: number[]) =>
    [...v]
      .map((ch, i) =>
        mask[i % mask.length]! ? (ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase()) : ch,
      )
      .join('');
  fc.assert(
    fc.property(
      fc.constantFrom('iss', 'aud', 'sub', 'scope', 'typ'),
      fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 12 }),
      (k, mask) => {
        if (k === 'typ') {
          const typ = flipCase(GRANT_TYP, mask);
          if (typ !== GRANT_TYP) check(signCompact({ ...header, typ }, claims, f.keys.issuer.privateKey));
          return;
        }
        const v = flipCase(String(claims[k]), mask);
        if (v !== claims[k]) check(signCompact(header, { ...claims, [k]: v }, f.keys.issuer.privateKey));
      },
    ),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 40 }), (mask) =>
      check(flipCase(valid, mask)),
    ),
    { numRuns: 300 },
  );

  // 7. Pure garbage.
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (g) => check(g)),
    { numRuns: 1000 },
  );

  assert.equal(accepted, 0);
  assert.ok(cases >= 8000, `ran ${cases} cases`);
  t.diagnostic(`fuzzed ${cases} hostile grants, 0 accepted`);
});
