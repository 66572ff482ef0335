/**
 * A local process that knows the hub's loopback RTMP port but not the per-run publish key sends
 * connect + createStream + publish (wrong key) + video tags in ONE write, so node-media-server
 * parses all of it before any hook can close the socket. The question (issue 12, finding 10): does
 * a frame of it reach a viewer? Checked with capture idle, during capture's idle grace, after
 * capture stopped, and with `play` instead of `publish`. A marker in the forged frames is searched
 * for in every byte handed to a hub tap and in a real viewer's stream through the gate. The
 * control — the same bytes with the right key — must inject, which proves the forged RTMP is
 * good enough to be seen.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { quietFor, waitUntil } from '../../harness/wait.ts';

const require = createRequire(import.meta.url);
const AMF = require('node-media-server/src/protocol/amf.js') as {
  encodeAmf0Cmd(o: Record<string, unknown>): Buffer;
};

const MARKER = Buffer.from('LENSCAP-FORGED-FRAME-0123456789');

let m: MediaFixture;
before(async () => {
  m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 3 });
});
after(async () => {
  await m?.close();
});

/** One RTMP message as a single fmt-0 chunk (we raise the chunk size first). */
function message(cid: number, type: number, streamId: number, ts: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(12);
  h[0] = cid & 0x3f;
  h.writeUIntBE(ts, 1, 3);
  h.writeUIntBE(payload.length, 4, 3);
  h[7] = type;
  h.writeUInt32LE(streamId, 8);
  return Buffer.concat([h, payload]);
}

function forged(port: number, verb: 'publish' | 'play', streamName: string): Buffer {
  const c0c1 = Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)]);
  const c2 = Buffer.alloc(1536);
  const chunkSize = Buffer.alloc(4);
  chunkSize.writeUInt32BE(65536);
  const connectCmd = AMF.encodeAmf0Cmd({
    cmd: 'connect',
    transId: 1,
    cmdObj: { app: 'live', tcUrl: `rtmp://127.0.0.1:${port}/live`, flashVer: 'FMLE/3.0', type: 'nonprivate' },
  });
  const createStream = AMF.encodeAmf0Cmd({ cmd: 'createStream', transId: 2, cmdObj: null });
  const verbCmd =
    verb === 'publish'
      ? AMF.encodeAmf0Cmd({ cmd: 'publish', transId: 3, cmdObj: null, streamName, type: 'live' })
      : AMF.encodeAmf0Cmd({ cmd: 'play', transId: 3, cmdObj: null, streamName });
  // AVC keyframe and inter frames (FLV video tag bodies) carrying the marker.
  const frame = (key: boolean) =>
    Buffer.concat([
      Buffer.from([key ? 0x17 : 0x27, 0x01, 0, 0, 0]),
      Buffer.from([0, 0, 0, 40]),
      MARKER,
      Buffer.alloc(9),
    ]);
  const media: Buffer[] = [];
  for (let i = 0; i < 10; i++) media.push(message(6, 9, 1, i * 40, frame(i % 5 === 0)));
  return Buffer.concat([
    c0c1,
    c2,
    message(2, 1, 0, 0, chunkSize),
    message(3, 20, 0, 0, connectCmd),
    message(3, 20, 0, 0, createStream),
    message(4, 20, 1, 0, verbCmd),
    ...media,
  ]);
}

/** Sends the whole attack in one write; resolves once the hub has closed it (or after 3 s). */
function attack(verb: 'publish' | 'play', streamName: string): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: m.stream.hub.rtmpPort }, () => {
      s.write(forged(m.stream.hub.rtmpPort, verb, streamName));
    });
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    const t = setTimeout(() => s.destroy(), 3000);
    s.on('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** An in-process hub tap like the gate's: records every byte handed to it. */
function tap(): { bytes: () => Buffer; detach: () => void } {
  const got: Buffer[] = [];
  const detach = m.stream.attach({ write: (c) => void got.push(Buffer.from(c)), end: () => undefined });
  return { bytes: () => Buffer.concat(got), detach };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const key = () => new URL(m.stream.hub.publishUrl).searchParams.get('k')!;

/** Attacks with a wrong key (and with play), proves each reached the hub's parser, checks taps. */
async function attackAndCheck(state: string, viewerTaps: Array<{ bytes: () => Buffer }>): Promise<void> {
  const refusedBefore = m.stream.hub.counters.publishRefused;
  const playBefore = m.stream.hub.counters.playRefused;
  await attack('publish', 'CAM-0001?k=wrong');
  await attack('publish', 'CAM-0001');
  await attack('play', 'CAM-0001');
  // The positive signal: each attack was parsed as far as its publish/play and refused there.
  assert.equal(m.stream.hub.counters.publishRefused, refusedBefore + 2, `${state}: publishes refused`);
  assert.equal(m.stream.hub.counters.playRefused, playBefore + 1, `${state}: play refused`);
  for (const t of viewerTaps)
    assert.equal(t.bytes().includes(MARKER), false, `${state}: a forged frame reached a tap`);
}

test('a one-write RTMP publish with a wrong key injects no frame: capture idle, idle grace, stopped, and by play', async () => {
  assert.equal(m.stream.capturePid(), undefined, 'capture idle at the start');
  const waiting = tap();
  try {
    await attackAndCheck('capture idle', [waiting]);
    assert.equal(m.stream.hub.isLive(), false, 'no forged publisher became live');

    // A real viewer now starts capture: its stream (cached header and GOP) must be ours only.
    const v = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
    let viewerBody: Buffer;
    try {
      await v.waitForKeyframe(10_000);
      viewerBody = v.result.body;
      assert.equal(viewerBody.includes(MARKER), false, 'forged frame in the viewer stream (idle)');
    } finally {
      v.close();
    }
    // Idle grace: the viewer left, capture keeps running for idleStopSeconds.
    await waitUntil(() => m.gate.sessions.size === 0, 3000, 'viewer gone');
    assert.ok(m.stream.capturePid(), 'capture still running in its idle grace');
    await attackAndCheck('idle grace', [waiting]);
    const v2 = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
    try {
      await v2.waitForKeyframe(10_000);
      await quietFor(300, 'a forged frame would reach the viewer stream (grace)');
      assert.equal(v2.result.body.includes(MARKER), false, 'forged frame in the viewer stream (grace)');
    } finally {
      v2.close();
    }
    // After the grace: capture stopped, the publish is over.
    await waitUntil(() => m.stream.capturePid() === undefined, 10_000, 'capture stopped');
    await attackAndCheck('capture stopped', [waiting]);
    assert.equal(m.stream.hub.isLive(), false);
  } finally {
    waiting.detach();
  }
});

test("a one-write RTMP publish with a wrong key in NMS's publish grace (capture ffmpeg just died) injects no frame", async () => {
  const v = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  const t = tap();
  try {
    await v.waitForKeyframe(10_000);
    const pid = m.stream.capturePid();
    assert.ok(pid, 'capture running for the viewer');
    const restarted = new Promise((r) => m.stream.supervisorEvents.once('started', r));
    process.kill(pid, 'SIGKILL');
    // The hub keeps the dead publisher for its grace window (5 s) so the same client may resume.
    await attackAndCheck('publish grace', [t]);
    await restarted;
    const before = v.result.parser.tags.length;
    await v.waitFor(
      (r) => r.parser.tags.slice(before).some((tag) => tag.frameType === 1),
      10_000,
      'a keyframe from the restarted capture',
    );
    assert.equal(v.result.body.includes(MARKER), false, 'forged frame in the viewer stream (publish grace)');
    assert.equal(t.bytes().includes(MARKER), false);
  } finally {
    t.detach();
    v.close();
  }
});

test('control: the same one write with the right key does reach a tap (the forged RTMP is effective)', async () => {
  await waitUntil(() => m.stream.capturePid() === undefined, 10_000, 'capture stopped');
  const t = tap();
  try {
    await attack('publish', `CAM-0001?k=${key()}`);
    assert.equal(t.bytes().includes(MARKER), true, 'the control injected nothing: the attack proves nothing');
  } finally {
    t.detach();
  }
});
