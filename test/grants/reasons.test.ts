/**
 * One row per refusal reason the grant pipeline can produce, each asserting its exact code, plus
 * the accept path. Every grant here is really signed; the keys are made at run time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHmac } from 'node:crypto';
import { signCompact } from '../../agent/grants/jws.ts';
import { GRANT_TYP, relayRefusal } from '../../agent/grants/verify.ts';
import { REFUSAL_REASONS, type RefusalReason } from '../../agent/grants/reasons.ts';
import { makeGrantFixture, NOW_MS, OWNER, SERIAL, type GrantFixture } from '../../harness/grants-fixture.ts';

const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const nowS = NOW_MS / 1000;
const baseClaims = () => ({
  iss: 'https://cloud.lenscap.dev',
  aud: SERIAL,
  sub: OWNER,
  jti: `j-${Math.random()}`,
  iat: nowS,
  exp: nowS + 300,
  scope: 'live',
});
function signed(
  f: GrantFixture,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  return signCompact(
    { alg: 'EdDSA', typ: GRANT_TYP, kid: f.keys.issuer.kid, ...header },
    claims,
    f.keys.issuer.privateKey,
  );
}

type Row = {
  name: string;
  reason: RefusalReason;
  token: (f: GrantFixture) => string | undefined;
  setup?: (f: GrantFixture) => void;
  purpose?: 'view' | 'push';
  fixture?: Parameters<typeof makeGrantFixture>[0];
};

const rows: Row[] = [
  { name: 'no token', reason: 'missing', token: () => undefined },
  { name: 'empty token', reason: 'missing', token: () => '' },
  { name: 'oversize token', reason: 'too_large', token: () => 'a'.repeat(5000) },
  { name: 'two parts', reason: 'malformed', token: () => 'abc.def' },
  { name: 'padding in base64url', reason: 'malformed', token: (f) => f.mint() + '=' },
  { name: 'header not JSON', reason: 'malformed', token: () => `${b64('nope')}.${b64({})}.${b64('sig')}` },
  {
    name: 'payload an array',
    reason: 'malformed',
    token: (f) => signed(f, [] as unknown as Record<string, unknown>),
  },
  {
    name: 'alg none',
    reason: 'alg_not_allowed',
    token: () => `${b64({ alg: 'none', typ: GRANT_TYP })}.${b64(baseClaims())}.`,
  },
  {
    name: 'alg none, with a signature part',
    reason: 'alg_not_allowed',
    token: () => `${b64({ alg: 'none', typ: GRANT_TYP, kid: 'x' })}.${b64(baseClaims())}.${b64('x')}`,
  },
  {
    name: 'HS256 keyed with the public key',
    reason: 'alg_not_allowed',
    token: (f) => {
      const input = `${b64({ alg: 'HS256', typ: GRANT_TYP, kid: f.keys.issuer.kid })}.${b64(baseClaims())}`;
      return `${input}.${createHmac('sha256', JSON.stringify(f.keys.issuer.publicJwk)).update(input).digest('base64url')}`;
    },
  },
  {
    name: 'ES256 when only EdDSA is allowed',
    reason: 'alg_not_allowed',
    token: (f) =>
      signCompact(
        { alg: 'ES256', typ: GRANT_TYP, kid: f.keys.issuer.kid },
        baseClaims(),
        generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      ),
  },
  { name: 'wrong typ', reason: 'wrong_type', token: (f) => signed(f, baseClaims(), { typ: 'JWT' }) },
  { name: 'missing typ', reason: 'wrong_type', token: (f) => signed(f, baseClaims(), { typ: undefined }) },
  {
    name: 'binding record presented as a grant',
    reason: 'wrong_type',
    token: (f) => signed(f, baseClaims(), { typ: 'lenscap-binding+jwt' }),
  },
  { name: 'missing kid', reason: 'unknown_key', token: (f) => signed(f, baseClaims(), { kid: undefined }) },
  {
    name: 'unknown kid',
    reason: 'unknown_key',
    token: (f) => signed(f, baseClaims(), { kid: 'issuer-unknown' }),
  },
  {
    name: 'binding key used as issuer',
    reason: 'unknown_key',
    token: (f) =>
      signCompact(
        { alg: 'EdDSA', typ: GRANT_TYP, kid: f.keys.binding.kid },
        baseClaims(),
        f.keys.binding.privateKey,
      ),
  },
  {
    name: 'embedded jwk',
    reason: 'unknown_key',
    token: (f) => signed(f, baseClaims(), { jwk: f.keys.issuer.publicJwk }),
  },
  {
    name: 'jku',
    reason: 'unknown_key',
    token: (f) => signed(f, baseClaims(), { jku: 'https://evil.example/jwks' }),
  },
  { name: 'x5c', reason: 'unknown_key', token: (f) => signed(f, baseClaims(), { x5c: ['MIIB'] }) },
  { name: 'crit', reason: 'malformed', token: (f) => signed(f, baseClaims(), { crit: ['exp'] }) },
  {
    name: 'signed by a stranger with the issuer kid',
    reason: 'bad_signature',
    token: (f) =>
      signCompact(
        { alg: 'EdDSA', typ: GRANT_TYP, kid: f.keys.issuer.kid },
        baseClaims(),
        generateKeyPairSync('ed25519').privateKey,
      ),
  },
  {
    name: 'payload swapped after signing',
    reason: 'bad_signature',
    token: (f) => {
      const [h, , s] = f.mint().split('.');
      return `${h}.${b64({ ...baseClaims(), sub: 'mallory' })}.${s}`;
    },
  },
  { name: 'missing jti', reason: 'malformed', token: (f) => signed(f, { ...baseClaims(), jti: undefined }) },
  {
    name: 'jti over 128 chars',
    reason: 'malformed',
    token: (f) => signed(f, { ...baseClaims(), jti: 'j'.repeat(129) }),
  },
  { name: 'missing iat', reason: 'malformed', token: (f) => signed(f, { ...baseClaims(), iat: undefined }) },
  {
    name: 'exp as a string',
    reason: 'malformed',
    token: (f) => signed(f, { ...baseClaims(), exp: String(nowS + 300) }),
  },
  { name: 'missing sub', reason: 'malformed', token: (f) => signed(f, { ...baseClaims(), sub: undefined }) },
  { name: 'wrong issuer', reason: 'wrong_issuer', token: (f) => f.mint({ issuer: 'https://evil.example' }) },
  {
    name: 'grant for another camera (the incident)',
    reason: 'wrong_audience',
    token: (f) => f.mint({ serial: 'CAM-0002' }),
  },
  {
    name: 'aud as an array containing the serial',
    reason: 'wrong_audience',
    token: (f) => signed(f, { ...baseClaims(), aud: [SERIAL] }),
  },
  {
    name: 'aud in lower case',
    reason: 'wrong_audience',
    token: (f) => f.mint({ serial: SERIAL.toLowerCase() }),
  },
  {
    name: 'aud with a trailing space',
    reason: 'wrong_audience',
    token: (f) => f.mint({ serial: `${SERIAL} ` }),
  },
  {
    name: 'aud with a Cyrillic look-alike',
    reason: 'wrong_audience',
    token: (f) => f.mint({ serial: SERIAL.replace('C', '\u0421') }),
  },
  {
    name: 'aud with a fullwidth digit',
    reason: 'wrong_audience',
    token: (f) => f.mint({ serial: SERIAL.replace('1', '\uff11') }),
  },
  {
    name: 'expired beyond tolerance',
    reason: 'expired',
    token: (f) => f.mint({ now: nowS - 400, ttlSeconds: 300 }),
  },
  { name: 'nbf in the future', reason: 'not_yet_valid', token: (f) => f.mint({ nbf: nowS + 120 }) },
  { name: 'iat in the future', reason: 'not_yet_valid', token: (f) => f.mint({ now: nowS + 120 }) },
  {
    name: 'lifetime over the maximum',
    reason: 'lifetime_too_long',
    token: (f) => f.mint({ ttlSeconds: 601 }),
  },
  { name: 'scope admin', reason: 'scope_not_allowed', token: (f) => f.mint({ scope: 'admin' }) },
  {
    name: 'scope live plus extra',
    reason: 'scope_not_allowed',
    token: (f) => f.mint({ scope: 'live admin' }),
  },
  {
    name: 'push grant at the viewer gate',
    reason: 'scope_not_allowed',
    token: (f) => f.mint({ relay: 'rtmp://relay.example/live/x' }),
  },
  {
    name: 'push without a relay claim',
    reason: 'scope_not_allowed',
    token: (f) => f.mint(),
    purpose: 'push',
  },
  {
    name: 'push to an http URL',
    reason: 'relay_not_allowed',
    token: (f) => f.mint({ relay: 'http://relay.example/live/x' }),
    purpose: 'push',
  },
  {
    name: 'privacy mode on',
    reason: 'privacy_mode',
    token: (f) => f.mint(),
    setup: (f) => {
      f.privacy.on = true;
    },
  },
  {
    name: 'viewer not bound (stale mapping)',
    reason: 'viewer_not_bound',
    token: (f) => f.mint({ viewer: 'mallory' }),
  },
  { name: 'camera not claimed', reason: 'not_claimed', token: (f) => f.mint(), fixture: { claimed: false } },
  {
    name: 'clock before the build time (no RTC)',
    reason: 'clock_untrusted',
    token: (f) => f.mint(),
    setup: (f) => f.clock.set(Date.parse('1970-01-01T00:00:10Z')),
  },
];

for (const row of rows) {
  test(`refuses: ${row.name} → ${row.reason}`, async (t) => {
    const f = await makeGrantFixture(row.fixture);
    t.after(f.cleanup);
    const token = row.token(f);
    row.setup?.(f);
    const d = await f.gate.decide(token, { source: 'gate:test', purpose: row.purpose ?? 'view' });
    assert.equal(d.ok, false);
    assert.equal(!d.ok && d.reason, row.reason, !d.ok ? d.detail : '');
    assert.equal(f.events.events.length, 1, 'one security event per refusal');
    assert.equal(f.events.events[0]?.reason, row.reason);
  });
}

test('accepts a valid grant once, then refuses it as replayed', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const token = f.mint();
  const first = await f.gate.decide(token, { source: 'gate:test', purpose: 'view' });
  assert.equal(first.ok, true);
  const second = await f.gate.decide(token, { source: 'gate:test', purpose: 'view' });
  assert.equal(!second.ok && second.reason, 'replayed');
});

test('a listed viewer (not the owner) is accepted; a push grant with a relay is accepted for push', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  assert.equal(
    (await f.gate.decide(f.mint({ viewer: 'bob' }), { source: 'gate:test', purpose: 'view' })).ok,
    true,
  );
  const push = await f.gate.decide(f.mint({ relay: 'rtmp://127.0.0.1:1935/live/CAM-0001' }), {
    source: 'mqtt:stream.start',
    purpose: 'push',
  });
  assert.equal(push.ok, true);
  assert.equal(push.ok && push.claims.relay, 'rtmp://127.0.0.1:1935/live/CAM-0001');
});

test('exp is a hard edge: expired by 10 s (inside the tolerance) or exactly at exp is refused; iat ahead is tolerated', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const view = { source: 'gate:test', purpose: 'view' } as const;
  const late = await f.gate.decide(f.mint({ now: nowS - 310, ttlSeconds: 300 }), view);
  assert.equal(late.ok ? 'accepted' : late.reason, 'expired');
  const atExp = await f.gate.decide(f.mint({ now: nowS - 300, ttlSeconds: 300 }), view);
  assert.equal(atExp.ok ? 'accepted' : atExp.reason, 'expired');
  const lastMs = await f.gate.decide(f.mint({ now: nowS - 299, ttlSeconds: 300 }), view);
  assert.equal(lastMs.ok, true, 'one second before exp is still good');
  // The tolerance still softens iat: a cloud clock 10 s ahead is fine.
  const ahead = await f.gate.decide(f.mint({ now: nowS + 10, ttlSeconds: 300 }), view);
  assert.equal(ahead.ok, true);
});

test('wrong_audience carries the claimed serial: the misroute alarm', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  await f.gate.decide(f.mint({ serial: 'CAM-0002', viewer: 'bob' }), {
    source: 'gate:10.0.0.9',
    purpose: 'view',
  });
  const e = f.events.events[0]!;
  assert.equal(e.type, 'grant_refused');
  assert.equal(e.claimedAud, 'CAM-0002');
  assert.equal(e.serial, SERIAL);
  assert.equal(e.sub, 'bob');
  assert.equal(e.source, 'gate:10.0.0.9');
});

test('an exception inside the decision is refused as internal (a device fault), never malformed or an accept', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const view = { source: 'gate:test', purpose: 'view' } as const;
  // A fault in the camera's own state (the binding lookup) while judging a perfectly good grant.
  f.gate.trust.isBound = () => {
    throw new Error('binding store unreadable');
  };
  const d = await f.gate.decide(f.mint(), view);
  assert.equal(d.ok ? 'accepted' : d.reason, 'internal');
  assert.equal(f.events.events.at(-1)?.reason, 'internal');
});

test('every reason the pipeline can produce is in the closed set', () => {
  for (const r of rows) assert.ok((REFUSAL_REASONS as readonly string[]).includes(r.reason));
});

test('push grants: scope "live" or "live relay" with a relay claim; the relay URL is checked on boundaries', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const push = { source: 'mqtt:stream.start', purpose: 'push' as const };
  const relay = 'rtmp://127.0.0.1:1935/live/CAM-0001';
  assert.equal((await f.gate.decide(f.mint({ relay, scope: 'live relay' }), push)).ok, true);
  const asViewer = await f.gate.decide(f.mint({ scope: 'live relay' }), {
    source: 'gate:test',
    purpose: 'view',
  });
  assert.equal(!asViewer.ok && asViewer.reason, 'scope_not_allowed');
  for (const scope of ['relay', 'live live', 'live  relay', 'Live', 'live relay admin']) {
    const d = await f.gate.decide(f.mint({ relay, scope }), push);
    assert.equal(!d.ok && d.reason, 'scope_not_allowed', scope);
  }
  for (const bad of [
    'rtmp://user:pw@relay.example/live/x',
    'rtmp://relay.example',
    'rtmp:///live/x',
    'rtmp://relay.example/live/x y',
    'rtmp://relay.example/live/\u0000',
    'file:///etc/passwd',
    'RTMP://relay.example/live/x',
  ]) {
    const d = await f.gate.decide(f.mint({ relay: bad }), push);
    assert.equal(!d.ok && d.reason, 'relay_not_allowed', bad);
  }
});

test('relayRefusal: allow-list entries match on a boundary, never as a bare string prefix', () => {
  const allow = ['rtmp://relay.example', 'rtmps://edge.example:443/app/'];
  assert.equal(relayRefusal('rtmp://relay.example/live/x', allow), undefined);
  assert.equal(relayRefusal('rtmps://edge.example:443/app/stream', allow), undefined);
  assert.match(relayRefusal('rtmp://relay.example.evil.net/live/x', allow) ?? '', /relayAllowList/);
  assert.match(relayRefusal('rtmp://relay.example:1936/live/x', allow) ?? '', /relayAllowList/);
  assert.match(relayRefusal('rtmps://edge.example:443/application/x', allow) ?? '', /relayAllowList/);
  assert.equal(relayRefusal('rtmp://anything.example/live/x', []), undefined);
});
