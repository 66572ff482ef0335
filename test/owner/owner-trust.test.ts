/**
 * Owner-held trust on the camera: the claim with proof of the label code, the owner-signed
 * membership (add, remove, transfer), the local reset — and every bad input of issue 14 item 7
 * refused with a code and a security event, with nothing changed on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { isLenscapError } from '../../agent/errors.ts';
import { formatClaimCode, parseClaimCode } from '../../agent/owner/claim-code.ts';
import { memberOf, makeClaim, signMembership } from '../../scripts/dev-cloud/owner-phone.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { signCompact } from '../../agent/grants/jws.ts';
import { MEMBERSHIP_TYP } from '../../agent/owner/membership.ts';
import { makeOwnerFixture, SERIAL, type OwnerFixture } from './fixture.ts';

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isLenscapError(err), `a LenscapError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** The refusal is coded, reported as a security event, and leaves the state dir byte-identical. */
function refusedCleanly(f: OwnerFixture, fn: () => unknown, code: string, eventType: string): void {
  const before = f.snapshot();
  const n = f.events.events.length;
  throwsCode(fn, code);
  assert.deepEqual(f.snapshot(), before, `nothing changed on disk for ${code}`);
  const ev = f.events.events.slice(n).find((e) => e.type === eventType);
  assert.ok(ev, `a ${eventType} security event for ${code}`);
  assert.equal(ev.reason, code);
}

test('claim code: 160 bits as 8 groups of 4 base32 characters; typing slack allowed, junk named', () => {
  const secret = Buffer.from('00112233445566778899aabbccddeeff01234567', 'hex');
  const code = formatClaimCode(secret);
  assert.match(code, /^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/);
  assert.deepEqual(parseClaimCode(code), secret);
  assert.deepEqual(parseClaimCode(code.toLowerCase().replace(/-/g, ' ')), secret);
  throwsCode(() => parseClaimCode(code.slice(0, 20)), 'ERR_CLAIM_CODE_INVALID');
  throwsCode(() => parseClaimCode(code.replace(/[A-Z]/, '1')), 'ERR_CLAIM_CODE_INVALID');
});

test('a claim with the right code records the owner crash-safely (0600) and survives a restart', () => {
  const f = makeOwnerFixture();
  try {
    assert.equal(f.owner.mode, 'legacy');
    const r = f.claimAs(f.alice, { viewers: [memberOf(f.bob, 'viewer')] });
    assert.deepEqual(r, { owner: 'alice', version: 1, members: 2 });
    assert.equal(f.owner.mode, 'owner-held');
    assert.equal(f.owner.memberJkt('alice'), f.alice.jkt);
    assert.equal(f.owner.memberJkt('bob'), f.bob.jkt);
    assert.equal(f.owner.isMember('mallory'), false);
    assert.equal(statSync(f.paths.ownerState).mode & 0o777, 0o600);
    assert.ok(f.events.events.some((e) => e.type === 'owner_claimed'));
    const again = f.reload();
    assert.equal(again.mode, 'owner-held');
    assert.equal(again.current()?.owner.sub, 'alice');
    assert.deepEqual(again.viewerKey('bob')?.jwk, f.bob.hpke);
    assert.deepEqual(
      again.viewerKeys().map((k) => k.sub),
      ['alice', 'bob'],
    );
  } finally {
    f.cleanup();
  }
});

test('wrong codes: refused, reported, nothing on disk, and a growing lockout on the injected clock', () => {
  const f = makeOwnerFixture({ lockout: { freeAttempts: 2, baseSeconds: 30, maxSeconds: 120 } });
  try {
    const wrong = formatClaimCode(Buffer.alloc(20, 7));
    const attempt = () => f.claimAs(f.mallory, { code: wrong });
    refusedCleanly(f, attempt, 'ERR_CLAIM_WRONG_PROOF', 'claim_refused');
    refusedCleanly(f, attempt, 'ERR_CLAIM_WRONG_PROOF', 'claim_refused');
    // Third failure: locked 30 s. Even the right code waits.
    refusedCleanly(f, attempt, 'ERR_CLAIM_WRONG_PROOF', 'claim_refused');
    refusedCleanly(f, () => f.claimAs(f.alice), 'ERR_CLAIM_LOCKED', 'claim_refused');
    f.clock.advance(31_000);
    refusedCleanly(f, attempt, 'ERR_CLAIM_WRONG_PROOF', 'claim_refused');
    // Fourth failure: 60 s now.
    f.clock.advance(31_000);
    refusedCleanly(f, () => f.claimAs(f.alice), 'ERR_CLAIM_LOCKED', 'claim_refused');
    f.clock.advance(30_000);
    refusedCleanly(f, attempt, 'ERR_CLAIM_WRONG_PROOF', 'claim_refused');
    f.clock.advance(119_000);
    refusedCleanly(f, () => f.claimAs(f.alice), 'ERR_CLAIM_LOCKED', 'claim_refused');
    f.clock.advance(2_000); // capped at 120 s
    assert.equal(f.claimAs(f.alice).owner, 'alice');
  } finally {
    f.cleanup();
  }
});

test('replayed claim, claim for another serial, key swap by the relay, already claimed: refused', () => {
  const f = makeOwnerFixture();
  try {
    // The relaying cloud keeps alice's claim and replays it later: the nonce is single-use.
    const { nonce } = f.owner.claimNonce();
    const claim = makeClaim(f.alice, { code: f.code, serial: SERIAL, nonce });
    // The relay swaps in its own key with alice's proof: the proof covers alice's key thumbprint.
    const { nonce: n2 } = f.owner.claimNonce();
    const aliceClaim2 = makeClaim(f.alice, { code: f.code, serial: SERIAL, nonce: n2 });
    const swapped = makeClaim(f.mallory, {
      code: formatClaimCode(Buffer.alloc(20)),
      serial: SERIAL,
      nonce: n2,
    });
    refusedCleanly(
      f,
      () => f.owner.claim({ ...swapped, proof: aliceClaim2.proof }),
      'ERR_CLAIM_WRONG_PROOF',
      'claim_refused',
    );
    // A claim computed for another camera's serial.
    const { nonce: n3 } = f.owner.claimNonce();
    refusedCleanly(
      f,
      () => f.owner.claim(makeClaim(f.alice, { code: f.code, serial: 'CAM-0002', nonce: n3 })),
      'ERR_CLAIM_WRONG_PROOF',
      'claim_refused',
    );
    assert.equal(f.owner.claim(claim).owner, 'alice');
    refusedCleanly(f, () => f.owner.claim(claim), 'ERR_CLAIM_ALREADY_CLAIMED', 'claim_refused');
    throwsCode(() => f.owner.claimNonce(), 'ERR_CLAIM_ALREADY_CLAIMED');
  } finally {
    f.cleanup();
  }
});

test('a replayed nonce after a reset is unknown to the camera', () => {
  const f = makeOwnerFixture();
  try {
    const { nonce } = f.owner.claimNonce();
    const claim = makeClaim(f.alice, { code: f.code, serial: SERIAL, nonce });
    f.owner.claim(claim);
    f.owner.reset('test');
    refusedCleanly(f, () => f.owner.claim(claim), 'ERR_CLAIM_NONCE', 'claim_refused');
  } finally {
    f.cleanup();
  }
});

test('membership: the owner adds and removes viewers; the camera follows', () => {
  const f = makeOwnerFixture();
  try {
    f.claimAs(f.alice);
    const e = readEpoch(f);
    const add = signMembership(f.alice, {
      serial: SERIAL,
      epoch: e,
      version: 2,
      members: [memberOf(f.alice, 'owner'), memberOf(f.bob, 'viewer')],
    });
    assert.equal(f.owner.acceptMembership(add).members, 2);
    assert.equal(f.owner.memberJkt('bob'), f.bob.jkt);
    const remove = signMembership(f.alice, {
      serial: SERIAL,
      epoch: e,
      version: 3,
      members: [memberOf(f.alice, 'owner')],
    });
    f.owner.acceptMembership(remove);
    assert.equal(f.owner.isMember('bob'), false);
    assert.equal(f.reload().isMember('bob'), false);
    assert.equal(f.owner.current()?.version, 3);
  } finally {
    f.cleanup();
  }
});

function readEpoch(f: OwnerFixture): string {
  return f.owner.current()!.epoch;
}

test('membership bad inputs: non-owner, cloud key, older version, other serial, other epoch, malformed keys', async () => {
  const f = makeOwnerFixture();
  try {
    f.claimAs(f.alice);
    const e = readEpoch(f);
    const members = [memberOf(f.alice, 'owner'), memberOf(f.mallory, 'viewer')];
    const cases: Array<[string, string, string]> = [
      [
        'signed by a non-owner',
        signMembership(f.mallory, { serial: SERIAL, epoch: e, version: 5, members }),
        'ERR_MEMBERSHIP_NOT_OWNER',
      ],
      [
        'older version',
        signMembership(f.alice, { serial: SERIAL, epoch: e, version: 1, members }),
        'ERR_MEMBERSHIP_ROLLBACK',
      ],
      [
        'another serial',
        signMembership(f.alice, { serial: 'CAM-0002', epoch: e, version: 5, members }),
        'ERR_MEMBERSHIP_WRONG_SERIAL',
      ],
      [
        'another epoch',
        signMembership(f.alice, { serial: SERIAL, epoch: 'x'.repeat(22), version: 5, members }),
        'ERR_MEMBERSHIP_WRONG_EPOCH',
      ],
      [
        'a malformed member key',
        signMembership(f.alice, {
          serial: SERIAL,
          epoch: e,
          version: 5,
          members: [
            memberOf(f.alice, 'owner'),
            { ...memberOf(f.mallory, 'viewer'), jwk: { ...f.mallory.jwk, x: 'AAAA' } },
          ],
        }),
        'ERR_MEMBERSHIP_INVALID',
      ],
      [
        'a member key with a private part',
        signMembership(f.alice, {
          serial: SERIAL,
          epoch: e,
          version: 5,
          members: [
            memberOf(f.alice, 'owner'),
            { ...memberOf(f.mallory, 'viewer'), jwk: { ...f.mallory.jwk, d: 'x'.repeat(43) } as never },
          ],
        }),
        'ERR_MEMBERSHIP_INVALID',
      ],
      [
        'two owners',
        signMembership(f.alice, {
          serial: SERIAL,
          epoch: e,
          version: 5,
          members: [memberOf(f.alice, 'owner'), memberOf(f.mallory, 'owner')],
        }),
        'ERR_MEMBERSHIP_INVALID',
      ],
      ['garbage', 'a.b.c', 'ERR_MEMBERSHIP_INVALID'],
    ];
    // The cloud's own keys (binding and issuer): as good as any other non-owner.
    const cloud = await loadOrCreateSigningKeys(`${f.dir}/dev`);
    for (const k of [cloud.binding, cloud.issuer])
      cases.push([
        `signed by the cloud's ${k.kid}`,
        signCompact(
          { alg: 'EdDSA', typ: MEMBERSHIP_TYP, kid: k.kid },
          { serial: SERIAL, epoch: e, version: 5, iat: 1, members },
          k.privateKey,
        ),
        'ERR_MEMBERSHIP_NOT_OWNER',
      ]);
    cases.push([
      "the cloud's key under the owner's kid",
      signCompact(
        { alg: 'EdDSA', typ: MEMBERSHIP_TYP, kid: f.alice.jkt },
        { serial: SERIAL, epoch: e, version: 5, iat: 1, members },
        cloud.binding.privateKey,
      ),
      'ERR_MEMBERSHIP_NOT_OWNER',
    ]);
    for (const [name, jws, code] of cases) {
      await test(name, () =>
        refusedCleanly(f, () => f.owner.acceptMembership(jws), code, 'membership_refused'),
      );
    }
    assert.equal(f.owner.isMember('mallory'), false);
    assert.equal(f.owner.current()?.version, 1);
  } finally {
    f.cleanup();
  }
});

test('transfer: signed by the current owner; afterwards only the new owner signs', () => {
  const f = makeOwnerFixture();
  try {
    f.claimAs(f.alice);
    const e = readEpoch(f);
    const transfer = signMembership(f.alice, {
      serial: SERIAL,
      epoch: e,
      version: 2,
      members: [memberOf(f.bob, 'owner'), memberOf(f.alice, 'viewer')],
    });
    assert.equal(f.owner.acceptMembership(transfer).transferred, true);
    assert.equal(f.owner.current()?.owner.sub, 'bob');
    const byAlice = signMembership(f.alice, {
      serial: SERIAL,
      epoch: e,
      version: 3,
      members: [memberOf(f.alice, 'owner')],
    });
    refusedCleanly(
      f,
      () => f.owner.acceptMembership(byAlice),
      'ERR_MEMBERSHIP_NOT_OWNER',
      'membership_refused',
    );
    const byBob = signMembership(f.bob, {
      serial: SERIAL,
      epoch: e,
      version: 3,
      members: [memberOf(f.bob, 'owner')],
    });
    f.owner.acceptMembership(byBob);
    assert.equal(f.reload().current()?.owner.sub, 'bob');
    assert.equal(f.owner.isMember('alice'), false);
  } finally {
    f.cleanup();
  }
});

test('reset: owner gone at once and after a restart; the label code claims again; old documents are dead', () => {
  const f = makeOwnerFixture();
  try {
    f.claimAs(f.alice);
    const oldEpoch = readEpoch(f);
    let heard = 0;
    f.owner.on('reset', () => heard++);
    assert.equal(f.owner.reset('test'), true);
    assert.equal(heard, 1);
    assert.equal(f.owner.mode, 'legacy');
    assert.equal(f.owner.isMember('alice'), false);
    assert.ok(f.events.events.some((e) => e.type === 'owner_reset'));
    assert.equal(f.reload().isClaimed(), false);
    f.claimAs(f.bob);
    const stale = signMembership(f.alice, {
      serial: SERIAL,
      epoch: oldEpoch,
      version: 9,
      members: [memberOf(f.alice, 'owner')],
    });
    refusedCleanly(
      f,
      () => f.owner.acceptMembership(stale),
      'ERR_MEMBERSHIP_NOT_OWNER',
      'membership_refused',
    );
  } finally {
    f.cleanup();
  }
});

test('legacy mode refuses claims; a damaged owner file fails closed (no fallback to the cloud binding)', async () => {
  const f = makeOwnerFixture({ mode: 'legacy' });
  try {
    throwsCode(() => f.owner.claimNonce(), 'ERR_CLAIM_DISABLED');
  } finally {
    f.cleanup();
  }
  const g = makeOwnerFixture();
  try {
    g.claimAs(g.alice);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(g.paths.ownerState, '{"format":1,');
    const t = g.reload();
    assert.equal(t.mode, 'owner-held');
    assert.equal(t.isClaimed(), false);
    assert.equal(t.isMember('alice'), false);
    t.reset('test');
    assert.equal(t.mode, 'legacy');
  } finally {
    g.cleanup();
  }
});
