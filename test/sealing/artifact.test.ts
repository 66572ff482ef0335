/**
 * The sealed event artifact as pure functions: every membership viewer key opens it, a key outside
 * the membership does not (ERR_SEAL_NOT_FOR_YOU, no plaintext), any flipped byte in the header,
 * the envelopes or the ciphertext is refused, an envelope moved to another artifact does not open,
 * and sealing to nobody is a coded error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openArtifact,
  parseArtifact,
  sealArtifact,
  type SealArtifactInput,
} from '../../agent/sealing/artifact.ts';
import { SealFormatError } from '../../agent/sealing/envelope.ts';
import { makeViewer } from '../../harness/viewer-keys.ts';

const plaintext = new Uint8Array(5000).map((_, i) => (i * 31) & 0xff);

function input(
  recipients: SealArtifactInput['recipients'],
  over: Partial<SealArtifactInput> = {},
): SealArtifactInput {
  return {
    kind: 'snapshot',
    membershipVersion: 3,
    id: 'CAM-1-ev1-snap',
    serial: 'CAM-1',
    contentType: 'image/jpeg',
    startedAtMs: 1_700_000_000_000,
    durationMs: 0,
    recipients,
    plaintext,
    ...over,
  };
}

test('every membership key opens the artifact; the header round-trips; the plaintext is not in the clear', async () => {
  const alice = await makeViewer('kid-alice');
  const bob = await makeViewer('kid-bob', 'P-256');
  const sealed = await sealArtifact(input([alice.key, bob.key]));
  assert.ok(!Buffer.from(sealed).includes(Buffer.from(plaintext.subarray(100, 140))));
  const parsed = parseArtifact(sealed);
  assert.deepEqual(parsed.kids, ['kid-alice', 'kid-bob']);
  for (const v of [alice, bob]) {
    const r = await openArtifact(sealed, v.keyPair, { serial: 'CAM-1', id: 'CAM-1-ev1-snap' });
    assert.ok(r.ok, JSON.stringify(!r.ok && r));
    assert.deepEqual(r.plaintext, plaintext);
    assert.equal(r.kid, v.kid);
    assert.deepEqual(r.header, {
      kind: 'snapshot',
      membershipVersion: 3,
      id: 'CAM-1-ev1-snap',
      serial: 'CAM-1',
      contentType: 'image/jpeg',
      startedAtMs: 1_700_000_000_000,
      durationMs: 0,
    });
  }
});

test('a key not in the membership cannot open it: ERR_SEAL_NOT_FOR_YOU, no plaintext', async () => {
  const alice = await makeViewer('kid-alice');
  const mallory = await makeViewer('kid-alice'); // even claiming the same kid
  const sealed = await sealArtifact(input([alice.key]));
  const r = await openArtifact(sealed, mallory.keyPair, { serial: 'CAM-1' });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.code, 'ERR_SEAL_NOT_FOR_YOU');
  assert.ok(!('plaintext' in r));
});

test('every single flipped byte is refused; nothing opens', async () => {
  const alice = await makeViewer('kid-alice');
  const sealed = await sealArtifact(input([alice.key], { plaintext: plaintext.subarray(0, 64) }));
  const codes = new Set<string>();
  for (let i = 0; i < sealed.length; i++) {
    const t = Uint8Array.from(sealed);
    t[i] = t[i]! ^ 0x01;
    const r = await openArtifact(t, alice.keyPair, { serial: 'CAM-1' });
    assert.equal(r.ok, false, `flip at byte ${i} opened`);
    if (!r.ok) codes.add(r.code);
  }
  for (const c of codes)
    assert.ok(
      ['ERR_SEAL_FORMAT', 'ERR_SEAL_VERSION', 'ERR_SEAL_NOT_FOR_YOU', 'ERR_SEAL_TAMPERED'].includes(c),
    );
});

test('a wrapped key moved onto another artifact, a wrong serial or id, truncation: refused', async () => {
  const alice = await makeViewer('kid-alice');
  const a = await sealArtifact(input([alice.key]));
  const b = await sealArtifact(input([alice.key], { id: 'CAM-1-ev2-snap' }));
  const pa = parseArtifact(a);
  const pb = parseArtifact(b);
  // b's header and ciphertext with a's envelope (same lengths: same kid and KEM).
  const spliced = new Uint8Array([
    ...pb.fixed,
    1,
    ...a.subarray(pa.fixed.length + 1, pa.aad.length),
    ...pb.ciphertext,
  ]);
  const r = await openArtifact(spliced, alice.keyPair, { serial: 'CAM-1' });
  assert.equal(!r.ok && r.code, 'ERR_SEAL_NOT_FOR_YOU');
  assert.equal((await openArtifact(a, alice.keyPair, { serial: 'CAM-2' })).ok, false);
  assert.equal((await openArtifact(a, alice.keyPair, { serial: 'CAM-1', id: 'other' })).ok, false);
  for (const n of [0, 3, 20, pa.aad.length, a.length - 1]) {
    const t = await openArtifact(a.subarray(0, n), alice.keyPair, { serial: 'CAM-1' });
    assert.equal(t.ok, false, `truncated at ${n}`);
  }
});

test('no recipients: ERR_SEAL_NO_KEY; a private JWK is refused', async () => {
  await assert.rejects(
    sealArtifact(input([])),
    (e: unknown) => e instanceof SealFormatError && e.code === 'ERR_SEAL_NO_KEY',
  );
  const alice = await makeViewer('kid-alice');
  const priv = await crypto.subtle
    .exportKey('jwk', alice.keyPair.privateKey)
    .catch(() => ({ ...alice.key.publicKey, d: 'x' }));
  await assert.rejects(sealArtifact(input([{ kid: 'k', publicKey: priv }])), SealFormatError);
});
