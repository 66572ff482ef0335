/**
 * The page API's owner-held endpoints on bad input (scripts/dev-cloud/page-owner-api.ts): the key
 * directory takes public JWKs of known users only — a private part, a wrong curve or an unknown
 * user is a coded refusal and nothing is stored; a push grant is minted only for a member of the
 * relayed owner-signed membership; unknown cameras are 404 and nothing is relayed. (The relays
 * themselves run for real in page-keys.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { ownerApi, type OwnerApiDeps } from '../../scripts/dev-cloud/page-owner-api.ts';
import { silentLogger } from '../../agent/log.ts';
import { makeTempDir } from '../../harness/tmp.ts';

function setup() {
  const tmp = makeTempDir('lenscap-ownerapi-');
  const relayed: string[] = [];
  const deps: OwnerApiDeps = {
    devDir: tmp.dir,
    // Every relay is recorded: a refused request must relay nothing.
    command: async (serial, op) => {
      relayed.push(`${serial} ${op}`);
      return { id: 'x', status: 'ok', data: {} };
    },
    users: () => ['alice', 'bob'],
    hasCamera: (s) => s === 'CAM-1',
    flvUrl: (s) => `http://127.0.0.1:1/live/${s}.flv`,
    relay: { pushUrl: (s) => `rtmp://127.0.0.1:2/live/${s}`, httpBase: 'http://127.0.0.1:3' },
    logger: silentLogger(),
  };
  const call = (method: string, path: string, body: Record<string, unknown> = {}) =>
    ownerApi(deps, method, new URL(path, 'http://x'), async () => body);
  return { tmp, relayed, call };
}

const publicJwks = () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const x = generateKeyPairSync('x25519');
  return {
    ecPrivate: ec.privateKey.export({ format: 'jwk' }),
    jwk: ec.publicKey.export({ format: 'jwk' }),
    hpke: x.publicKey.export({ format: 'jwk' }),
  };
};

test('the key directory refuses private parts, wrong curves and unknown users; stores public keys', async (t) => {
  const { tmp, call } = setup();
  t.after(tmp.cleanup);
  const k = publicJwks();
  const rows: Array<[string, Record<string, unknown>, number, string]> = [
    ['a private signing key', { user: 'bob', jwk: k.ecPrivate, hpke: k.hpke }, 400, 'ERR_KEY_INVALID'],
    [
      'an Ed25519 key as signing key',
      { user: 'bob', jwk: { kty: 'OKP', crv: 'Ed25519', x: k.hpke.x }, hpke: k.hpke },
      400,
      'ERR_KEY_INVALID',
    ],
    ['no sealing key', { user: 'bob', jwk: k.jwk }, 400, 'ERR_KEY_INVALID'],
    ['an unknown user', { user: 'mallory', jwk: k.jwk, hpke: k.hpke }, 404, 'unknown_user'],
    ['a user name that is a path', { user: '../x', jwk: k.jwk, hpke: k.hpke }, 404, 'unknown_user'],
  ];
  for (const [name, body, status, error] of rows) {
    const r = await call('POST', '/api/keys', body);
    assert.equal(r?.status, status, name);
    assert.equal((r?.body as { error: string }).error, error, name);
  }
  assert.equal(existsSync(join(tmp.dir, 'directory')), false, 'nothing stored');
  const ok = await call('POST', '/api/keys', {
    user: 'bob',
    jwk: { ...k.jwk, kid: 'x', alg: 'ES256' },
    hpke: k.hpke,
  });
  assert.equal(ok?.status, 200);
  const got = await call('GET', '/api/keys?user=bob');
  assert.deepEqual(Object.keys((got?.body as Record<string, unknown>).jwk as object).sort(), [
    'crv',
    'kty',
    'x',
    'y',
  ]);
  assert.equal((await call('GET', '/api/keys?user=alice'))?.status, 404);
});

test('push grants for members only; unknown cameras relay nothing', async (t) => {
  const { tmp, relayed, call } = setup();
  t.after(tmp.cleanup);
  const r = await call('POST', '/api/push', { user: 'bob', serial: 'CAM-1' });
  assert.equal(r?.status, 403);
  assert.equal((r?.body as { error: string }).error, 'not_member');
  for (const [path, body] of [
    ['/api/claim/nonce', { serial: 'CAM-9' }],
    ['/api/claim', { serial: 'CAM-9', nonce: 'n', proof: 'p', membership: 'm' }],
    ['/api/membership', { serial: '../CAM-1', membership: 'm' }],
    ['/api/push/start', { serial: 'CAM-9', token: 't', dpop: 'd' }],
    ['/api/confused-cloud', { serial: 'CAM-9' }],
  ] as const) {
    const res = await call('POST', path, body);
    assert.equal(res?.status, 404, path);
    assert.equal((res?.body as { error: string }).error, 'unknown_camera', path);
  }
  assert.deepEqual(relayed, []);
  assert.equal(await call('GET', '/api/nothing-here'), undefined);
});
