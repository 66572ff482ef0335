/**
 * The membership's version floor lives in the camera's one floors store (trust/floors.json) beside
 * the trust bundle's and the binding's: putting back an older copy of owner/state.json — a removed
 * viewer back, or an earlier claim's owner after a reset and a new claim — does not bring it back
 * (the camera fails closed and reports `membership_refused ERR_MEMBERSHIP_ROLLBACK`). A camera whose
 * state predates the store entry is migrated at load; the grants room's floors stay untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeOwnerFixture } from './fixture.ts';
import { memberOf, signMembership } from '../../scripts/dev-cloud/owner-phone.ts';
import { VersionFloors } from '../../agent/storage/version-floors.ts';

const SPAN = 2 ** 32;
const floors = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;

test('a rolled-back owner/state.json cannot bring a removed viewer back', (t) => {
  const f = makeOwnerFixture();
  t.after(f.cleanup);
  // The grants room's floors are already in the file: they must survive the owner's writes.
  mkdirSync(dirname(f.paths.versionFloors), { recursive: true });
  writeFileSync(f.paths.versionFloors, JSON.stringify({ binding: 7, trust_bundle: 3 }));
  f.claimAs(f.alice, { viewers: [memberOf(f.bob, 'viewer')] });
  const withBob = readFileSync(f.paths.ownerState);
  f.owner.acceptMembership(
    signMembership(f.alice, {
      serial: 'CAM-0001',
      epoch: f.owner.current()!.epoch,
      version: 2,
      members: [memberOf(f.alice, 'owner')],
    }),
  );
  assert.deepEqual(floors(f.paths.versionFloors), {
    binding: 7,
    membership: SPAN + 2,
    owner_claim: 1,
    trust_bundle: 3,
  });
  // Another instance of the store (the grants room's) raising its own kind keeps ours.
  VersionFloors.open(f.paths.versionFloors).raise('binding', 8);
  assert.equal(floors(f.paths.versionFloors).membership, SPAN + 2);

  writeFileSync(f.paths.ownerState, withBob); // the rollback
  const n = f.events.events.length;
  const owner = f.reload();
  assert.equal(owner.isMember('bob'), false, 'bob is not back');
  assert.equal(owner.isClaimed(), false);
  assert.equal(owner.mode, 'owner-held', 'fails closed: every grant refused until a local reset');
  assert.ok(
    f.events.events
      .slice(n)
      .some(
        (e) =>
          e.type === 'membership_refused' &&
          e.reason === 'ERR_MEMBERSHIP_ROLLBACK' &&
          e.source === 'state:owner',
      ),
  );
  assert.equal(floors(f.paths.versionFloors).membership, SPAN + 2, 'the floor did not move');
});

test("after a reset and a new claim, the earlier claim's state file is refused too", (t) => {
  const f = makeOwnerFixture();
  t.after(f.cleanup);
  f.claimAs(f.mallory, { viewers: [] });
  // A high version under the first owner: a naive per-file floor would let it win later.
  f.owner.acceptMembership(
    signMembership(f.mallory, {
      serial: 'CAM-0001',
      epoch: f.owner.current()!.epoch,
      version: 9,
      members: [memberOf(f.mallory, 'owner')],
    }),
  );
  const malloryState = readFileSync(f.paths.ownerState);
  f.owner.reset('local:test');
  f.claimAs(f.alice);
  assert.deepEqual(floors(f.paths.versionFloors), { membership: 2 * SPAN + 1, owner_claim: 2 });
  writeFileSync(f.paths.ownerState, malloryState);
  const owner = f.reload();
  assert.equal(owner.isMember('mallory'), false);
  assert.equal(owner.isClaimed(), false);
  // The current state loads again once put back (the floor is exactly it).
  owner.reset('local:test');
  f.claimAs(f.bob);
  assert.equal(f.reload().current()!.owner.sub, 'bob');
  assert.deepEqual(floors(f.paths.versionFloors), { membership: 3 * SPAN + 1, owner_claim: 3 });
});

test('migration: a state file from before (no claimSeq, no store entry) raises the store at load', (t) => {
  const f = makeOwnerFixture();
  t.after(f.cleanup);
  f.claimAs(f.alice, { viewers: [memberOf(f.bob, 'viewer')] });
  f.owner.acceptMembership(
    signMembership(f.alice, {
      serial: 'CAM-0001',
      epoch: f.owner.current()!.epoch,
      version: 4,
      members: [memberOf(f.alice, 'owner')],
    }),
  );
  // What an older agent left: the floor only in the state file, none in the store.
  const { claimSeq: _c, ...old } = JSON.parse(readFileSync(f.paths.ownerState, 'utf8')) as Record<
    string,
    unknown
  >;
  writeFileSync(f.paths.ownerState, JSON.stringify(old));
  writeFileSync(f.paths.versionFloors, JSON.stringify({ binding: 2 }));
  const owner = f.reload();
  assert.equal(owner.current()!.version, 4, 'the old camera keeps its owner and membership');
  assert.deepEqual(floors(f.paths.versionFloors), { binding: 2, membership: SPAN + 4, owner_claim: 1 });
  // A newer membership still works and is floored in the store.
  owner.acceptMembership(
    signMembership(f.alice, {
      serial: 'CAM-0001',
      epoch: owner.current()!.epoch,
      version: 5,
      members: [memberOf(f.alice, 'owner'), memberOf(f.bob, 'viewer')],
    }),
  );
  assert.equal(floors(f.paths.versionFloors).membership, SPAN + 5);
});
