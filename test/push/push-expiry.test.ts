/**
 * Push and the exp edge: a push grant past its exp (even inside the clock tolerance) never
 * starts, and a push whose exp passes between the decision and the first media chunk sends
 * nothing towards the relay. Real grants, the real hub with the test pattern running through
 * ffmpeg, the real push (its own RTMP client); the relay is a TCP listener that counts who dials it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { createPushService } from '../../agent/push/push.ts';
import { silentLogger } from '../../agent/log.ts';
import type { FlvSink } from '../../agent/stream/media-hub.ts';
import { systemClock } from '../../agent/clock.ts';
import { mapViewerKeys, type ViewerKeySource } from '../../agent/sealing/viewer-keys.ts';
import { makeViewer } from '../../harness/viewer-keys.ts';
import { waitUntil } from '../../harness/wait.ts';

let m: MediaFixture;
let relay: Server;
let relayUrl: string;
const dials: Socket[] = [];
let viewerKeys: ViewerKeySource;

before(async () => {
  viewerKeys = mapViewerKeys({ alice: (await makeViewer('alice#1')).key });
  m = await makeMediaFixture({ mode: 'always' });
  relay = createServer((s) => {
    dials.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayUrl = `rtmp://127.0.0.1:${(relay.address() as { port: number }).port}/live/CAM-0001`;
  await waitUntil(() => m.stream.hub.isLive(), 10_000, 'capture live');
});
after(async () => {
  for (const s of dials) s.destroy();
  await new Promise<void>((r) => relay?.close(() => r()));
  await m?.close();
});

function pushWith(
  now: () => number,
  stream: MediaFixture['stream'] | { acquire(): () => void; attach(s: FlvSink): () => void },
) {
  return createPushService({
    serial: 'CAM-0001',
    grants: m.f.gate,
    stream,
    ffmpegPath: m.stream.ffmpegPath,
    relayAllowList: [],
    clock: { ...systemClock, now },
    logger: silentLogger(),
    retryMs: 300,
    viewerKeys,
  });
}

test('a push grant 20 s past exp (inside the clock tolerance) is refused expired; a fresh one dials the relay', async () => {
  const push = pushWith(() => Date.now(), m.stream);
  try {
    const stale = m.f.mint({ relay: relayUrl, now: Date.now() / 1000 - 320, ttlSeconds: 300 });
    const r = await push.start(stale);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'expired');
    assert.equal(push.active().length, 0);
    // Positive control: the same relay, a fresh grant → the push dials it.
    const before = dials.length;
    const ok = await push.start(m.f.mint({ relay: relayUrl }));
    assert.equal(ok.ok, true, JSON.stringify(ok));
    await waitUntil(() => dials.length > before, 10_000, 'the push dials the relay');
  } finally {
    await push.close();
  }
});

test('exp passing between the decision and the first media chunk: the push stops, nothing goes to the relay', async () => {
  let skew = 0;
  let chunks = 0;
  const stream = {
    acquire: () => m.stream.acquire(),
    attach: (sink: FlvSink) =>
      m.stream.attach({
        write(chunk) {
          if (++chunks === 1) skew = 31_000;
          sink.write(chunk);
        },
        end: () => sink.end(),
      }),
  };
  const push = pushWith(() => Date.now() + skew, stream);
  const dialsBefore = dials.length;
  try {
    const r = await push.start(m.f.mint({ relay: relayUrl, ttlSeconds: 30 }));
    assert.equal(r.ok, true, 'good at decision time');
    assert.ok(chunks >= 1, 'the hub handed the push media (header + cached GOP)');
    await waitUntil(() => push.active().length === 0, 2000, 'push stopped at exp');
    assert.equal(push.counters.stopped, 1);
  } finally {
    await push.close();
  }
  // Positive signal instead of a fixed sleep: a control push on the same relay dials it now, so the
  // relay was reachable and a late dial of the expired push would have been counted before it.
  const control = pushWith(() => Date.now(), m.stream);
  try {
    const ok = await control.start(m.f.mint({ relay: relayUrl }));
    assert.equal(ok.ok, true, JSON.stringify(ok));
    await waitUntil(() => dials.length > dialsBefore, 10_000, 'the control push dials the relay');
    assert.equal(dials.length, dialsBefore + 1, 'only the control dialled the relay');
  } finally {
    await control.close();
  }
});
