/**
 * The real key source: sealing takes the viewer's HPKE key from the owner-signed membership
 * (agent/owner), and what it seals opens with that member's phone key only. A non-member, or a
 * camera still in legacy mode, has no key (push is refused `viewer_key_missing` upstream).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { membershipViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { createFrameSealer } from '../../agent/sealing/sealer.ts';
import { FrameOpener } from '../../agent/sealing/opener.ts';
import { suiteFor } from '../../agent/sealing/suite.ts';
import { memberOf } from '../../scripts/dev-cloud/owner-phone.ts';
import { makeOwnerFixture, SERIAL } from '../owner/fixture.ts';

async function pairOf(priv: KeyObject): Promise<CryptoKeyPair> {
  const jwk = priv.export({ format: 'jwk' });
  const kem = (await suiteFor('X25519')).kem;
  const { d: _d, ...pub } = jwk;
  return {
    privateKey: await kem.importKey('jwk', jwk as JsonWebKey, false),
    publicKey: await kem.importKey('jwk', pub as JsonWebKey, true),
  };
}

const keyframe = Uint8Array.from([0x17, 1, 0, 0, 0, 0, 0, 0, 4, 0x65, 1, 2, 3]);

test("membership keys: sealed to bob opens with bob's phone key only; legacy and non-members have none", async () => {
  const f = makeOwnerFixture();
  try {
    const src = membershipViewerKeys(f.owner);
    assert.equal(src.hpkeKeyFor('bob'), undefined, 'legacy mode: nobody has a key');
    f.claimAs(f.alice, { viewers: [memberOf(f.bob, 'viewer')] });
    assert.equal(src.hpkeKeyFor('mallory'), undefined, 'not a member');
    const bobKey = src.hpkeKeyFor('bob');
    assert.ok(bobKey);
    assert.equal(bobKey.kid, f.owner.viewerKey('bob')?.kid);
    const sealer = await createFrameSealer({ serial: SERIAL, viewer: bobKey });
    const sealed = sealer.sealVideo(keyframe);
    const bob = new FrameOpener({ serial: SERIAL, keyPair: await pairOf(f.bob.hpkePrivate) });
    const alice = new FrameOpener({ serial: SERIAL, keyPair: await pairOf(f.alice.hpkePrivate) });
    const rb = await bob.open(sealed);
    assert.ok(rb.ok && rb.frame);
    assert.deepEqual(rb.body, keyframe);
    const ra = await alice.open(sealed);
    assert.deepEqual(
      [ra.ok, !ra.ok && ra.code],
      [false, 'ERR_SEAL_NOT_FOR_YOU'],
      "even the owner cannot open a viewer's stream",
    );
  } finally {
    f.cleanup();
  }
});
