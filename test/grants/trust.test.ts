/**
 * Trust material over time: key rotation through a new trust bundle, rollback refusal for both the
 * bundle and the binding record, documents signed by the wrong key, and what survives a restart.
 * Every document is really signed with keys made at run time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGrantGate } from '../../agent/grants/grant-gate.ts';
import { signCompact } from '../../agent/grants/jws.ts';
import { BINDING_TYP } from '../../agent/grants/binding.ts';
import { TRUST_BUNDLE_TYP, verifyTrustBundle } from '../../agent/grants/trust-bundle.ts';
import { isLenscapError, type ErrorCode } from '../../agent/errors.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import {
  rotateSigningKeys,
  signTrustBundle,
  loadOrCreateSigningKeys,
} from '../../scripts/dev-cloud/signing-keys.ts';
import { mintGrant, signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { makeGrantFixture, OWNER, SERIAL, type GrantFixture } from '../../harness/grants-fixture.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const view = { source: 'gate:test', purpose: 'view' as const };
const throwsCode = (fn: () => unknown, code: ErrorCode) =>
  assert.throws(
    fn,
    (err: unknown) =>
      isLenscapError(err, code) ||
      assert.fail(
        `expected ${code}, got ${String((err as { code?: string }).code)}: ${(err as Error).message}`,
      ),
  );

function restart(f: GrantFixture, events = new MemoryEventSink()) {
  const { config } = loadConfig(undefined, {});
  return createGrantGate({
    serial: SERIAL,
    grants: config.grants,
    relayAllowList: [],
    stateDir: f.paths.root,
    clock: f.clock,
    logger: silentLogger(),
    events,
    isPrivacyOn: () => false,
  });
}

test('verifyTrustBundle: the root signs, nothing else does; versions only go up', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const keys = await loadOrCreateSigningKeys(join(dir, 'dev'));
  const b = verifyTrustBundle(keys.trustBundle, keys.trustRootJwk);
  assert.equal(b.version, 1);
  assert.ok(b.issuerKeys.has(keys.issuer.kid));
  assert.ok(b.bindingKeys.has(keys.binding.kid));

  // Signed by the issuer key under the root's kid, by a stranger, or with a wrong typ.
  const forged = signTrustBundle({ ...keys.issuer, kid: keys.root.kid }, 9, [keys.issuer], [keys.binding]);
  throwsCode(() => verifyTrustBundle(forged, keys.trustRootJwk), 'ERR_TRUST_BUNDLE_INVALID');
  const payload = JSON.parse(Buffer.from(keys.trustBundle.split('.')[1]!, 'base64url').toString());
  throwsCode(
    () =>
      verifyTrustBundle(
        signCompact({ alg: 'EdDSA', typ: 'JWT', kid: keys.root.kid }, payload, keys.root.privateKey),
        keys.trustRootJwk,
      ),
    'ERR_TRUST_BUNDLE_INVALID',
  );
  // One kid in both roles would let the grant issuer authorise viewers.
  throwsCode(
    () => verifyTrustBundle(signTrustBundle(keys.root, 2, [keys.issuer], [keys.issuer]), keys.trustRootJwk),
    'ERR_TRUST_BUNDLE_INVALID',
  );
  // The root listed as a grant issuer (or a binding key), under its own kid or another: the root
  // only signs bundles. And one key under two kids in both roles is still one key in both roles.
  const rootUnderOtherKid = {
    ...keys.root,
    kid: 'issuer-x',
    publicJwk: { ...keys.root.publicJwk, kid: 'issuer-x' },
  };
  const issuerAsBinding = {
    ...keys.issuer,
    kid: 'binding-x',
    publicJwk: { ...keys.issuer.publicJwk, kid: 'binding-x' },
  };
  for (const [name, issuers, bindings] of [
    ['root as issuer', [keys.issuer, keys.root], [keys.binding]],
    ['root as issuer, other kid', [rootUnderOtherKid], [keys.binding]],
    ['root as binding key', [keys.issuer], [keys.binding, keys.root]],
    ['issuer key as binding key, other kid', [keys.issuer], [issuerAsBinding]],
  ] as const) {
    assert.throws(
      () => verifyTrustBundle(signTrustBundle(keys.root, 2, [...issuers], [...bindings]), keys.trustRootJwk),
      (err: unknown) => isLenscapError(err, 'ERR_TRUST_BUNDLE_INVALID'),
      name,
    );
  }
  // The control: the same bundle without the root is fine.
  assert.equal(
    verifyTrustBundle(signTrustBundle(keys.root, 2, [keys.issuer], [keys.binding]), keys.trustRootJwk)
      .version,
    2,
  );
  // A private key smuggled into the bundle is refused.
  const withPrivate = signCompact(
    { alg: 'EdDSA', typ: TRUST_BUNDLE_TYP, kid: keys.root.kid },
    {
      ...payload,
      issuerKeys: { keys: [{ ...keys.issuer.privateKey.export({ format: 'jwk' }), kid: 'x', alg: 'EdDSA' }] },
    },
    keys.root.privateKey,
  );
  throwsCode(() => verifyTrustBundle(withPrivate, keys.trustRootJwk), 'ERR_TRUST_BUNDLE_INVALID');
  // Rollback.
  throwsCode(
    () => verifyTrustBundle(keys.trustBundle, keys.trustRootJwk, { minVersion: 1 }),
    'ERR_TRUST_BUNDLE_ROLLBACK',
  );
  // A bad root JWK.
  throwsCode(
    () => verifyTrustBundle(keys.trustBundle, { kty: 'oct', k: 'AAAA', kid: 'r' }),
    'ERR_TRUST_ROOT_INVALID',
  );
});

test('rotation: a newer bundle swaps the issuer key, old grants stop verifying, the old bundle cannot come back', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const oldGrant = f.mint();
  const rotated = await rotateSigningKeys(join(f.dir, 'dev'));
  assert.equal(rotated.trustVersion, 2);

  assert.deepEqual(f.gate.acceptTrustBundle(rotated.trustBundle), { version: 2 });
  const ev = f.events.events.at(-1)!;
  assert.equal(ev.type, 'trust_updated');
  assert.deepEqual(ev.data, { version: 2, previous: 1 });

  const refused = await f.gate.decide(oldGrant, view);
  assert.equal(!refused.ok && refused.reason, 'unknown_key');
  const fresh = mintGrant(rotated.issuer, { serial: SERIAL, viewer: OWNER, now: f.clock.now() / 1000 }).token;
  assert.equal((await f.gate.decide(fresh, view)).ok, true);

  // Replaying the old bundle (rollback to a retired, perhaps leaked, key) or re-sending the same one.
  throwsCode(() => f.gate.acceptTrustBundle(f.keys.trustBundle), 'ERR_TRUST_BUNDLE_ROLLBACK');
  throwsCode(() => f.gate.acceptTrustBundle(rotated.trustBundle), 'ERR_TRUST_BUNDLE_ROLLBACK');
  throwsCode(() => f.gate.acceptTrustBundle('garbage'), 'ERR_TRUST_BUNDLE_INVALID');
  assert.equal(f.gate.trust.trustVersion, 2);

  // The rotation is on disk: a restarted agent trusts the new key and not the old one.
  f.gate.close();
  const again = restart(f);
  t.after(() => again.close());
  assert.equal(again.trust.trustVersion, 2);
  const afterRestart = await again.decide(f.mint(), view);
  assert.equal(!afterRestart.ok && afterRestart.reason, 'unknown_key');
  assert.equal(
    (
      await again.decide(
        mintGrant(rotated.issuer, { serial: SERIAL, viewer: OWNER, now: f.clock.now() / 1000 }).token,
        view,
      )
    ).ok,
    true,
  );
});

test('rotating the binding key: the installed record no longer verifies, so the camera is unclaimed until re-sent', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const rotated = await rotateSigningKeys(join(f.dir, 'dev'), { binding: true });
  f.gate.acceptTrustBundle(rotated.trustBundle);
  const mint = () =>
    mintGrant(rotated.issuer, { serial: SERIAL, viewer: OWNER, now: f.clock.now() / 1000 }).token;
  const d = await f.gate.decide(mint(), view);
  assert.equal(!d.ok && d.reason, 'not_claimed');
  // The old binding key can no longer sign a record; the new one can.
  throwsCode(
    () =>
      f.gate.acceptBinding(signBindingRecord(f.keys.binding, { serial: SERIAL, owner: OWNER, version: 5 })),
    'ERR_BINDING_INVALID',
  );
  // Versions keep rising across the gap: the fixture's record was version 1.
  assert.throws(
    () =>
      f.gate.acceptBinding(signBindingRecord(rotated.binding, { serial: SERIAL, owner: OWNER, version: 1 })),
    (e: unknown) => isLenscapError(e, 'ERR_BINDING_ROLLBACK'),
  );
  f.gate.acceptBinding(signBindingRecord(rotated.binding, { serial: SERIAL, owner: OWNER, version: 5 }));
  assert.equal((await f.gate.decide(mint(), view)).ok, true);
});

test('binding records: claim, share, unshare; rollback, another serial and the wrong key are refused', async (t) => {
  const f = await makeGrantFixture({ claimed: false });
  t.after(f.cleanup);
  const bind = (req: { owner?: string; viewers?: string[]; version: number; serial?: string }) =>
    signBindingRecord(f.keys.binding, {
      serial: req.serial ?? SERIAL,
      owner: req.owner ?? OWNER,
      viewers: req.viewers ?? [],
      version: req.version,
    });

  assert.equal(((await f.gate.decide(f.mint(), view)) as { reason: string }).reason, 'not_claimed');
  assert.deepEqual(f.gate.acceptBinding(bind({ version: 10, viewers: ['bob'] })), {
    version: 10,
    owner: OWNER,
    viewers: 1,
  });
  const ev = f.events.events.at(-1)!;
  assert.equal(ev.type, 'binding_changed');
  assert.equal(ev.data?.version, 10);
  assert.equal((await f.gate.decide(f.mint({ viewer: 'bob' }), view)).ok, true);

  // Bob is removed in version 11; the old version 10 (which listed him) cannot be replayed.
  f.gate.acceptBinding(bind({ version: 11 }));
  assert.equal(
    ((await f.gate.decide(f.mint({ viewer: 'bob' }), view)) as { reason: string }).reason,
    'viewer_not_bound',
  );
  throwsCode(() => f.gate.acceptBinding(bind({ version: 10, viewers: ['bob'] })), 'ERR_BINDING_ROLLBACK');
  throwsCode(() => f.gate.acceptBinding(bind({ version: 11, viewers: ['bob'] })), 'ERR_BINDING_ROLLBACK');

  // A record for another camera (the misrouted claim), one signed by the grant issuer key, a
  // stranger, or presented with the grant typ.
  throwsCode(
    () => f.gate.acceptBinding(bind({ version: 12, serial: 'CAM-0002', viewers: ['bob'] })),
    'ERR_BINDING_WRONG_SERIAL',
  );
  throwsCode(
    () =>
      f.gate.acceptBinding(
        signBindingRecord({ ...f.keys.issuer }, { serial: SERIAL, owner: 'mallory', version: 13 }),
      ),
    'ERR_BINDING_INVALID',
  );
  throwsCode(
    () =>
      f.gate.acceptBinding(
        signBindingRecord(
          { ...f.keys.binding, privateKey: generateKeyPairSync('ed25519').privateKey },
          { serial: SERIAL, owner: 'mallory', version: 14 },
        ),
      ),
    'ERR_BINDING_INVALID',
  );
  const payload = { serial: SERIAL, owner: 'mallory', viewers: [], version: 15, iat: 1 };
  throwsCode(
    () =>
      f.gate.acceptBinding(
        signCompact(
          { alg: 'EdDSA', typ: 'lenscap-grant+jwt', kid: f.keys.binding.kid },
          payload,
          f.keys.binding.privateKey,
        ),
      ),
    'ERR_BINDING_INVALID',
  );
  throwsCode(
    () =>
      f.gate.acceptBinding(
        signCompact(
          { alg: 'EdDSA', typ: BINDING_TYP, kid: f.keys.binding.kid },
          { ...payload, viewers: 'all' },
          f.keys.binding.privateKey,
        ),
      ),
    'ERR_BINDING_INVALID',
  );
  assert.equal(f.gate.trust.bindingRecord?.version, 11);

  // Survives a restart, and a tampered file on disk makes the camera unclaimed, not open.
  f.gate.close();
  const again = restart(f);
  assert.equal(again.trust.bindingRecord?.version, 11);
  again.close();
  const raw = readFileSync(f.paths.binding, 'utf8');
  const [h, , s] = raw.split('.');
  writeFileSync(
    f.paths.binding,
    `${h}.${Buffer.from(JSON.stringify({ ...payload, owner: OWNER, viewers: ['bob'], version: 99 })).toString('base64url')}.${s}`,
  );
  const tampered = restart(f);
  t.after(() => tampered.close());
  assert.equal(tampered.trust.isClaimed(), false);
  assert.equal(((await tampered.decide(f.mint(), view)) as { reason: string }).reason, 'not_claimed');
});

test('a camera without trust material refuses to build a gate (nothing may stream)', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const { config } = loadConfig(undefined, {});
  const clock = { now: () => Date.now() };
  assert.throws(
    () =>
      createGrantGate({
        serial: SERIAL,
        grants: config.grants,
        relayAllowList: [],
        stateDir: join(dir, 'state'),
        clock,
        logger: silentLogger(),
        events: new MemoryEventSink(),
        isPrivacyOn: () => false,
      }),
    (err: unknown) => isLenscapError(err, 'ERR_TRUST_ROOT_MISSING'),
  );
});

test('rollback across a restart: the version floors are on disk, so an old binding or bundle is refused after a restart too', async (t) => {
  const f = await makeGrantFixture({ claimed: false });
  t.after(f.cleanup);
  // The current owner's record is version 5; an ex-owner's version 3 was signed earlier.
  f.gate.acceptBinding(signBindingRecord(f.keys.binding, { serial: SERIAL, owner: OWNER, version: 5 }));
  // Rotating the binding key un-verifies the installed record (camera unclaimed, floor 5 kept).
  const rotated = await rotateSigningKeys(join(f.dir, 'dev'), { binding: true });
  f.gate.acceptTrustBundle(rotated.trustBundle);
  assert.equal(f.gate.trust.isClaimed(), false);
  const exOwners = signBindingRecord(rotated.binding, { serial: SERIAL, owner: 'mallory', version: 3 });

  // Restart: the floor must come back from disk.
  f.gate.close();
  const events = new MemoryEventSink();
  const again = restart(f, events);
  t.after(() => again.close());
  throwsCode(() => again.acceptBinding(exOwners), 'ERR_BINDING_ROLLBACK');
  assert.equal(again.trust.isClaimed(), false);
  const mallory = mintGrant(rotated.issuer, { serial: SERIAL, viewer: 'mallory', now: f.clock.now() / 1000 });
  assert.equal(((await again.decide(mallory.token, view)) as { reason: string }).reason, 'not_claimed');
  // The real owner's next version still goes in.
  again.acceptBinding(signBindingRecord(rotated.binding, { serial: SERIAL, owner: OWNER, version: 6 }));
  assert.equal(again.trust.bindingRecord?.version, 6);

  // The bundle on disk swapped back to the old one (v1) while the agent was down: refused at start, reported.
  again.close();
  writeFileSync(f.paths.trustBundle, f.keys.trustBundle);
  assert.throws(
    () => restart(f),
    (err: unknown) => isLenscapError(err, 'ERR_TRUST_BUNDLE_ROLLBACK'),
  );
  // A binding file swapped back to an older record is treated as unclaimed and reported.
  writeFileSync(f.paths.trustBundle, rotated.trustBundle);
  writeFileSync(f.paths.binding, exOwners);
  const events2 = new MemoryEventSink();
  const third = restart(f, events2);
  t.after(() => third.close());
  assert.equal(third.trust.isClaimed(), false);
  const rep = events2.events.find((e) => e.reason === 'ERR_BINDING_ROLLBACK');
  assert.ok(rep, `rollback reported: ${JSON.stringify(events2.events)}`);
});
