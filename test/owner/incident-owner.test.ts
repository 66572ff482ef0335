/** The owner-held phase of the incident replay, small: 0 forged memberships and 0 misdelivered grants accepted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runOwnerHeldIncident } from '../../harness/incident/owner.ts';

test('a confused cloud: forged memberships and misdelivered grants all refused, each reported', async () => {
  const r = await runOwnerHeldIncident({ cameras: 4, share: 0.5 });
  assert.equal(r.boundGrantsAccepted, 4);
  assert.ok(r.forgedMembershipsTried > 0 && r.misdeliveredGrantsTried > 0);
  assert.equal(r.forgedMembershipsAccepted, 0);
  assert.equal(r.misdeliveredGrantsAccepted, 0);
  assert.equal(r.ownerEventsLost, 0);
  console.log(`# ${JSON.stringify(r)}`);
});
