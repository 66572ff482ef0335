/**
 * Sealing as pure functions: a session's frames open only for the bound viewer's key pair; a
 * tampered, reordered, replayed or spliced frame is refused with its code; counter gaps (a relay
 * dropping frames) are tolerated; a late joiner opens from the next keyframe; key rotation works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFrameSealer, SEAL_ROTATE_BYTES, SEAL_ROTATE_MS } from '../../agent/sealing/sealer.ts';
import { FrameOpener } from '../../agent/sealing/opener.ts';
import { FRAME_OVERHEAD, parseSealedBody } from '../../agent/sealing/frame.ts';
import { parseEnvelope } from '../../agent/sealing/envelope.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { makeViewer } from '../../harness/viewer-keys.ts';

/** An AVC video tag body: header (key/inter, NALU) + a length-prefixed NAL with a recognisable payload. */
function frame(i: number, key: boolean, size = 200): Uint8Array {
  const b = new Uint8Array(5 + 4 + size);
  b[0] = key ? 0x17 : 0x27;
  b[1] = 1;
  b[4] = 40; // CTS
  new DataView(b.buffer).setUint32(5, size);
  b[9] = key ? 0x65 : 0x41;
  for (let j = 10; j < b.length; j++) b[j] = (i * 7 + j) & 0xff;
  return b;
}
const seqHeader = Uint8Array.from([0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff]);

/** A GOP-of-5 session of n frames. */
function frames(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => frame(i, i % 5 === 0));
}

test('the bound viewer opens every frame; sizes grow by the documented overhead', async () => {
  const alice = await makeViewer('alice#1');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const opener = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  const seq = await opener.open(sealer.sealVideo(seqHeader));
  assert.ok(seq.ok && !seq.frame, 'sequence header passes in the clear');
  for (const [i, f] of frames(12).entries()) {
    const sealed = sealer.sealVideo(f);
    if (i % 5 !== 0) assert.equal(sealed.length, f.length + FRAME_OVERHEAD);
    assert.equal(sealed[0], f[0], 'clear frame-type byte');
    assert.ok(!Buffer.from(sealed).includes(Buffer.from(f.subarray(20, 60))), 'payload is not in the clear');
    const r = await opener.open(sealed);
    assert.ok(r.ok && r.frame, `frame ${i}: ${JSON.stringify(!r.ok && r)}`);
    assert.deepEqual(r.body, f);
  }
  assert.equal(opener.sealedForMe, true);
  assert.equal(opener.counters.opened, 12);
});

test('a wrong viewer opens nothing and learns it is sealed for someone else', async () => {
  const alice = await makeViewer('alice#1');
  const mallory = await makeViewer('mallory#1');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const opener = new FrameOpener({ serial: 'CAM-1', keyPair: mallory.keyPair });
  const codes = new Set<string>();
  for (const f of frames(10)) {
    const r = await opener.open(sealer.sealVideo(f));
    assert.equal(r.ok, false);
    if (!r.ok) codes.add(r.code);
  }
  assert.deepEqual([...codes], ['ERR_SEAL_NOT_FOR_YOU']);
  assert.equal(opener.sealedForMe, false);
  assert.equal(opener.counters.opened, 0);
});

test('the envelope is bound to the camera serial: the same stream presented as another camera opens nothing', async () => {
  const alice = await makeViewer('alice#1');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const opener = new FrameOpener({ serial: 'CAM-2', keyPair: alice.keyPair });
  const r = await opener.open(sealer.sealVideo(frame(0, true)));
  assert.deepEqual([r.ok, !r.ok && r.code], [false, 'ERR_SEAL_NOT_FOR_YOU']);
});

test('tampered ciphertext, header byte, counter or key id: refused, and the stream goes on', async () => {
  const alice = await makeViewer('alice#1');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const opener = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  const s = frames(6).map((f) => sealer.sealVideo(f));
  assert.ok((await opener.open(s[0]!)).ok);
  const flip = (b: Uint8Array, at: number) => {
    const c = Uint8Array.from(b);
    c[at] = c[at]! ^ 1;
    return c;
  };
  const tampered = [
    flip(s[1]!, s[1]!.length - 30), // ciphertext
    flip(s[1]!, s[1]!.length - 1), // GCM tag
    flip(s[1]!, 0), // frame-type byte: inter claimed as key (0x27 -> 0x26 codec) … refused as format or tag
    flip(s[1]!, 21), // counter (raised: a forged future counter)
  ];
  for (const t of tampered) {
    const r = await opener.open(t);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && ['ERR_SEAL_TAMPERED', 'ERR_SEAL_FORMAT'].includes(r.code), !r.ok ? r.code : '');
  }
  const keyFlag = Uint8Array.from(s[1]!);
  keyFlag[0] = 0x17; // claims keyframe: the clear header byte is bound by the AAD
  const rk = await opener.open(keyFlag);
  assert.deepEqual([rk.ok, !rk.ok && rk.code], [false, 'ERR_SEAL_TAMPERED']);
  const truncated = await opener.open(s[1]!.subarray(0, 20));
  assert.deepEqual([truncated.ok, !truncated.ok && truncated.code], [false, 'ERR_SEAL_FORMAT']);
  assert.ok((await opener.open(s[1]!)).ok, 'the genuine frame still opens after the forgeries');
});

test('replay and reorder are refused; gaps are tolerated', async () => {
  const alice = await makeViewer('alice#1');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const opener = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  const s = frames(10).map((f) => sealer.sealVideo(f));
  assert.ok((await opener.open(s[0]!)).ok);
  assert.ok((await opener.open(s[1]!)).ok);
  const replay = await opener.open(s[1]!);
  assert.deepEqual([replay.ok, !replay.ok && replay.code], [false, 'ERR_SEAL_REPLAY']);
  assert.ok((await opener.open(s[4]!)).ok, 'frames 2 and 3 dropped by a relay: gap tolerated');
  const late = await opener.open(s[3]!);
  assert.deepEqual([late.ok, !late.ok && late.code], [false, 'ERR_SEAL_REPLAY'], 'reordered frame refused');
  assert.ok((await opener.open(s[5]!)).ok);
  assert.equal(opener.counters.gaps, 1);
});

test('splicing: a frame from another session (same viewer) is refused; an old session cannot come back', async () => {
  const alice = await makeViewer('alice#1');
  const a = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const b = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const sa = frames(6).map((f) => a.sealVideo(f));
  const sb = frames(6).map((f) => b.sealVideo(f));
  const opener = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  assert.ok((await opener.open(sa[0]!)).ok);
  assert.ok((await opener.open(sa[1]!)).ok);
  const spliced = await opener.open(sb[2]!);
  assert.equal(spliced.ok, false, 'inter frame of session B inside session A');
  assert.ok(!spliced.ok && spliced.code === 'ERR_SEAL_TAMPERED');
  // Session B starts properly at its keyframe: the viewer follows it (a camera restart).
  assert.ok((await opener.open(sb[0]!)).ok);
  assert.ok((await opener.open(sb[1]!)).ok);
  // Session A's keyframe later on: an earlier session spliced back in.
  const back = await opener.open(sa[5]!);
  assert.deepEqual([back.ok, !back.ok && back.code], [false, 'ERR_SEAL_SESSION']);
});

test('a late joiner opens from the first keyframe it sees (key in-band at every keyframe)', async () => {
  const alice = await makeViewer('alice#1');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key });
  const s = frames(15).map((f) => sealer.sealVideo(f));
  for (const [i, b] of s.entries()) {
    const p = parseSealedBody(b);
    assert.equal(!!p.envelope, i % 5 === 0, `envelope at keyframes only (frame ${i})`);
  }
  const opener = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  const early = await opener.open(s[7]!);
  assert.deepEqual([early.ok, !early.ok && early.code], [false, 'ERR_SEAL_NO_KEY']);
  let ok = 0;
  for (const b of s.slice(10)) if ((await opener.open(b)).ok) ok++;
  assert.equal(ok, 5);
});

test('key rotation takes effect at a keyframe; the counter never repeats; P-256 viewers work too', async () => {
  const alice = await makeViewer('alice#p256', 'P-256');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key, keyBytes: 32 });
  const opener = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  const f = frames(15);
  const out: Uint8Array[] = [];
  for (const [i, x] of f.entries()) {
    if (i === 2) await sealer.rotate();
    out.push(sealer.sealVideo(x));
  }
  const ids = out.map((b) => parseSealedBody(b).keyId);
  assert.deepEqual(ids, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  const counters = out.map((b) => parseSealedBody(b).counter);
  assert.equal(new Set(counters.map(String)).size, 15);
  assert.equal(parseEnvelope(parseSealedBody(out[5]!).envelope!).kid, 'alice#p256');
  for (const b of out) assert.ok((await opener.open(b)).ok);
  assert.equal(sealer.counters.rotations, 1);
});

test('bounded rotation by time and by bytes: a new key at the next keyframe after the bound, not before', async () => {
  const alice = await makeViewer('alice#1');
  let t = 1_000_000;
  const byTime = await createFrameSealer({
    serial: 'CAM-1',
    viewer: alice.key,
    now: () => t,
    rotateAfterMs: 60_000,
  });
  const ids: number[] = [];
  for (const [i, f] of frames(20).entries()) {
    if (i === 7) t += 60_000; // the bound passes mid-GOP
    ids.push(parseSealedBody(byTime.sealVideo(f)).keyId);
    await byTime.settled(); // the envelope for the next key is made in the background
  }
  assert.deepEqual(ids, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  // 200-byte payloads, 1,000-byte bound: a new key every keyframe after 5 frames under one key.
  const byBytes = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key, rotateAfterBytes: 1000 });
  const b: number[] = [];
  for (const f of frames(16)) {
    b.push(parseSealedBody(byBytes.sealVideo(f)).keyId);
    await byBytes.settled();
  }
  assert.deepEqual(b, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]);
  assert.equal(byBytes.counters.rotations, 3);
});

test('by default a sealer is bounded: a new key after SEAL_ROTATE_MS under one key', async () => {
  const alice = await makeViewer('alice#1');
  let t = 0;
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key, now: () => t });
  const ids: number[] = [];
  for (const [i, f] of frames(10).entries()) {
    if (i === 2) t += SEAL_ROTATE_MS;
    ids.push(parseSealedBody(sealer.sealVideo(f)).keyId);
    await sealer.settled();
  }
  assert.deepEqual(ids, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  assert.ok(SEAL_ROTATE_MS <= 10 * 60_000 && SEAL_ROTATE_BYTES <= 256 << 20);
});

test('across rotations: a late joiner opens from the first keyframe after one; gaps pass; replay, reorder and splice do not', async () => {
  const alice = await makeViewer('alice#1');
  const sealer = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key, rotateAfterFrames: 5 });
  const other = await createFrameSealer({ serial: 'CAM-1', viewer: alice.key, rotateAfterFrames: 5 });
  const s: Uint8Array[] = [];
  const o: Uint8Array[] = [];
  for (const f of frames(30)) {
    s.push(sealer.sealVideo(f));
    o.push(other.sealVideo(f));
    await sealer.settled();
    await other.settled();
  }
  const ids = s.map((b) => parseSealedBody(b).keyId);
  assert.deepEqual(
    ids.filter((_, i) => i % 5 === 0),
    [0, 1, 2, 3, 4, 5],
    'a new key at every keyframe',
  );
  // A viewer joining after two rotations: nothing before its first keyframe, everything from it.
  const late = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  assert.equal((await late.open(s[12]!)).ok, false);
  for (const b of s.slice(15)) assert.ok((await late.open(b)).ok);
  // One viewer from the start, with a relay dropping frames — the keyframe that brings key 2 too.
  const v = new FrameOpener({ serial: 'CAM-1', keyPair: alice.keyPair });
  for (const b of s.slice(0, 8)) assert.ok((await v.open(b)).ok);
  const noKey = await v.open(s[11]!); // key 2's envelope was in frame 10, which never arrived
  assert.deepEqual([noKey.ok, !noKey.ok && noKey.code], [false, 'ERR_SEAL_NO_KEY']);
  assert.ok((await v.open(s[15]!)).ok, 'the next keyframe (key 3) resumes the stream');
  assert.ok(v.counters.gaps >= 1);
  // Replay of an old-key frame, reordering across the key change, and a same-key-id frame of another session.
  const replay = await v.open(s[7]!);
  assert.deepEqual([replay.ok, !replay.ok && replay.code], [false, 'ERR_SEAL_REPLAY']);
  assert.ok((await v.open(s[17]!)).ok);
  const reorder = await v.open(s[16]!);
  assert.deepEqual([reorder.ok, !reorder.ok && reorder.code], [false, 'ERR_SEAL_REPLAY']);
  const spliced = await v.open(o[18]!); // key id 3, counter 18: only the session binding differs
  assert.equal(parseSealedBody(o[18]!).keyId, parseSealedBody(s[18]!).keyId);
  assert.deepEqual([spliced.ok, !spliced.ok && spliced.code], [false, 'ERR_SEAL_TAMPERED']);
  assert.ok((await v.open(s[18]!)).ok, 'the genuine frame still opens');
});

test('viewer key sources refuse private keys and know only whom they list', async () => {
  const alice = await makeViewer('alice#1');
  const src = mapViewerKeys({ alice: alice.key });
  assert.equal(src.hpkeKeyFor('alice')?.kid, 'alice#1');
  assert.equal(src.hpkeKeyFor('bob'), undefined);
  assert.throws(() => mapViewerKeys({ x: { kid: 'x', publicKey: { ...alice.key.publicKey, d: 'AAAA' } } }));
  await assert.rejects(
    createFrameSealer({
      serial: 'CAM-1',
      viewer: { kid: 'k', publicKey: { kty: 'RSA', n: 'x', e: 'AQAB' } },
    }),
    /neither X25519 nor P-256/,
  );
});
