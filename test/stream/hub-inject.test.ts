/**
 * The hub has no listener (issue 18: capture's ffmpeg writes FLV to a pipe the hub reads in
 * process), so no local process can publish into it or play from it. Proven from the kernel's
 * side: the TCP sockets this process listens on (/proc/net/tcp* against /proc/self/fd) are the
 * gate's and nothing else, with capture idle, running and stopped. And in the spirit of issue 12
 * finding 10, a local process sends connect + createStream + publish (or play) + video tags in ONE
 * write to every port this process does listen on — with capture idle, running, in its idle
 * grace, just after an ffmpeg crash (the hub's publish grace) and stopped — and a marker in the
 * forged frames is searched for in every byte handed to a hub tap and in real viewers' streams.
 * The control — the same marker frames handed to the hub's ingest — must reach a tap, which proves
 * the search would see an injected frame.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { listeningPorts } from '../../harness/listening.ts';
import { quietFor, waitUntil } from '../../harness/wait.ts';

const require = createRequire(import.meta.url);
const AMF = require('node-media-server/src/protocol/amf.js') as {
  encodeAmf0Cmd(o: Record<string, unknown>): Buffer;
};

const MARKER = Buffer.from('LENSCAP-FORGED-FRAME-0123456789');

let m: MediaFixture;
/** What this test process listened on before the media side existed (nothing, normally). */
let portsBefore: number[];
let gatePort: number;
before(async () => {
  portsBefore = listeningPorts();
  m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 3 });
  gatePort = Number(new URL(m.url()).port);
});
/** Ports opened since the start, which must be the gate's alone. */
const newPorts = () => listeningPorts().filter((p) => !portsBefore.includes(p));
after(async () => {
  await m?.close();
});

/** An AVC keyframe or inter frame (an FLV video tag body) carrying the marker. */
function frame(key: boolean): Buffer {
  return Buffer.concat([
    Buffer.from([key ? 0x17 : 0x27, 0x01, 0, 0, 0]),
    Buffer.from([0, 0, 0, 40]),
    MARKER,
    Buffer.alloc(9),
  ]);
}

/** One FLV video tag (header, body, PreviousTagSize). */
function flvTag(ts: number, body: Buffer): Buffer {
  const h = Buffer.alloc(11);
  h[0] = 9;
  h.writeUIntBE(body.length, 1, 3);
  h.writeUIntBE(ts & 0xffffff, 4, 3);
  const prev = Buffer.alloc(4);
  prev.writeUInt32BE(11 + body.length);
  return Buffer.concat([h, body, prev]);
}

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

/** Sends the whole attack in one write to `port`; resolves once it is closed (or after 3 s). */
function attack(port: number, verb: 'publish' | 'play', streamName: string): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.write(forged(port, verb, streamName));
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
/**
 * Checks the listeners (the gate's port only), then attacks every port this process listens on
 * with a publish (with and without a key) and a play, and checks that no tap saw the marker and
 * forged frame reached them.
 */
async function attackAndCheck(state: string, viewerTaps: Array<{ bytes: () => Buffer }>): Promise<void> {
  assert.deepEqual(newPorts(), [gatePort], `${state}: this process listens on the gate's port alone`);
  const ports = listeningPorts();
  assert.ok(ports.length >= 1, `${state}: something to attack`);
  for (const port of ports) {
    await attack(port, 'publish', 'CAM-0001?k=wrong');
    await attack(port, 'publish', 'CAM-0001');
    await attack(port, 'play', 'CAM-0001');
  }
  for (const t of viewerTaps)
    assert.equal(t.bytes().includes(MARKER), false, `${state}: a forged frame reached a tap`);
}

test('the hub listens on no port: capture idle, running and stopped, this process listens on the gate alone', async () => {
  assert.deepEqual(portsBefore, [], 'the test process listened on nothing before');
  assert.deepEqual(newPorts(), [gatePort], 'capture idle: the gate alone');
  const v = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await v.waitForKeyframe(10_000);
    assert.ok(m.stream.capturePid(), 'capture running');
    assert.deepEqual(newPorts(), [gatePort], 'capture running: the gate alone');
  } finally {
    v.close();
  }
  await waitUntil(() => m.stream.capturePid() === undefined, 10_000, 'capture stopped');
  assert.deepEqual(newPorts(), [gatePort], 'capture stopped: the gate alone');
});

test('a one-write RTMP publish or play to every port this process listens on injects no frame: capture idle, idle grace, stopped', async () => {
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

test("a one-write RTMP publish to every port this process listens on, in the hub's publish grace (capture ffmpeg just died), injects no frame", async () => {
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

test('control: the same marker frames handed to the hub as a capture stream do reach a tap (the search works)', async () => {
  await waitUntil(() => m.stream.capturePid() === undefined, 10_000, 'capture stopped');
  const t = tap();
  try {
    const w = m.stream.hub.ingest((f) => assert.fail(`control stream refused: ${f.message}`));
    w.write(
      Buffer.concat([
        Buffer.from('FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'),
        flvTag(0, Buffer.from([0x17, 0x00, 0, 0, 0, 0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00, 0x01, 0xe0])),
        ...Array.from({ length: 5 }, (_, i) => flvTag(i * 40, frame(i === 0))),
      ]),
    );
    await waitUntil(() => t.bytes().includes(MARKER), 3000, 'the marker at the tap');
    w.end();
    m.stream.hub.dropPublish();
  } finally {
    t.detach();
  }
});
