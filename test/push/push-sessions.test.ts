/**
 * Push sessions live in the one session table with the gate's viewers (agent/sessions/, composed
 * so by agent/media.ts): one cut policy ends both. A viewer leaving the membership is one
 * `closeUnless` that cuts their gate session and their push; stream.stop by jti through the table
 * cuts the push; exp by the injected clock cuts a push even while no media flows (the table's
 * sweep). Each cut is checked at the push's own RTMP connection: not one media tag is handed to
 * the relay after it, while capture keeps producing (another viewer keeps receiving). Real grants,
 * the real hub with ffmpeg's test pattern, the real gate, the real push and node-media-server as
 * the relay (own process).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { createPushService, type PushService } from '../../agent/push/push.ts';
import { openRtmp, type RtmpClientOptions } from '../../agent/push/rtmp/client.ts';
import { silentLogger } from '../../agent/log.ts';
import { systemClock } from '../../agent/clock.ts';
import { mapViewerKeys, type ViewerKeySource } from '../../agent/sealing/viewer-keys.ts';
import { makeViewer } from '../../harness/viewer-keys.ts';
import { waitUntil, within } from '../../harness/wait.ts';

let m: MediaFixture;
let relay: ChildProcess;
let urls: { rtmpBase: string; httpBase: string };
let push: PushService;
let viewerKeys: ViewerKeySource;
/** Media tags the push handed to its relay connections (the only way a byte goes to the relay). */
let tagsToRelay = 0;

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** The real RTMP publisher, counting every tag handed to it. */
function countingPublish(o: RtmpClientOptions) {
  const c = openRtmp(o);
  return {
    ready: c.ready,
    closed: c.closed,
    bufferedBytes: () => c.bufferedBytes(),
    close: () => c.close(),
    sendTag: (t: Parameters<typeof c.sendTag>[0]) => {
      tagsToRelay++;
      c.sendTag(t);
    },
  };
}

before(async () => {
  viewerKeys = mapViewerKeys({ alice: (await makeViewer('alice#1')).key });
  m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 1 });
  relay = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../../harness/relay-child.ts', import.meta.url))],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: relay.stdout! });
  urls = await within(
    new Promise((resolve) => {
      lines.on('line', (line) => {
        // Only its ready line matters here; anything else it prints (logs) is skipped.
        let o: { ready?: boolean; rtmpBase: string; httpBase: string } | undefined;
        try {
          o = JSON.parse(line) as typeof o;
        } catch {
          return;
        }
        if (o?.ready) resolve(o);
      });
    }),
    60_000,
    'the relay child to print ready',
  );
  push = createPushService({
    serial: 'CAM-0001',
    grants: m.f.gate,
    stream: m.stream,
    publish: countingPublish,
    relayAllowList: [],
    clock: m.f.clock,
    logger: silentLogger(),
    activity: m.activity,
    // The gate's table, as agent/media.ts composes it: one cut policy for viewers and pushes.
    sessions: m.gate.sessions,
    retryMs: 300,
    viewerKeys,
  });
});
after(async () => {
  await push?.close();
  relay?.stdin?.end();
  if (relay && relay.exitCode === null)
    await Promise.race([once(relay, 'exit'), new Promise((r) => setTimeout(r, 3000))]);
  relay?.kill('SIGKILL');
  await m?.close();
});

/** Starts alice's push and waits until media really goes to the relay. */
async function alicePushing(): Promise<string> {
  const r = await push.start(m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 120 }));
  assert.equal(r.ok, true, JSON.stringify(r));
  const before = tagsToRelay;
  await waitUntil(() => tagsToRelay >= before + 10, 15_000, 'the push sends media to the relay');
  return r.ok ? r.jti : '';
}

test('a viewer leaving the membership: one table call cuts their gate session and their push; no tag to the relay after', async () => {
  const jti = await alicePushing();
  const aliceAtGate = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  const bobAtGate = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint({ viewer: 'bob' })) });
  const atRelay = FlvClient.http({ url: `${urls.httpBase}/live/CAM-0001.flv` });
  try {
    await Promise.all([aliceAtGate.waitForKeyframe(10_000), bobAtGate.waitForKeyframe(10_000)]);
    await atRelay.waitForKeyframe(10_000);
    assert.deepEqual(
      m.gate.sessions
        .list()
        .map((s) => `${s.kind}:${s.sub}`)
        .sort(),
      ['push:alice', 'view:alice', 'view:bob'],
      'viewers and the push in one table',
    );
    const stoppedBefore = push.counters.stopped;

    // The membership changed without alice (what agent/media.ts `cut` does on owner change).
    const cut = m.gate.sessions.closeUnless((s) => s.sub !== 'alice', 'not_a_member');
    const tagsAtCut = tagsToRelay;
    assert.equal(cut, 2, "alice's gate session and alice's push");
    assert.deepEqual(
      m.gate.sessions.list().map((s) => `${s.kind}:${s.sub}`),
      ['view:bob'],
    );
    await aliceAtGate.waitClosed(2000);
    await waitUntil(() => push.active().length === 0, 5000, 'the push connection closed');
    assert.equal(push.counters.stopped, stoppedBefore + 1);
    assert.equal(m.gate.counters.closedByReason.not_a_member, 1);

    // Positive signal: capture kept producing media the push could have sent (bob still receives).
    const bobAtCut = bobAtGate.result.parser.tags.length;
    await bobAtGate.waitFor((r) => r.parser.tags.length >= bobAtCut + 20, 10_000, 'bob still receiving');
    assert.equal(tagsToRelay, tagsAtCut, 'not one media tag was handed to the relay after the cut');
    // At the relay: the push connection is closed (nothing is in flight from the camera), and what
    // the relay had by then reached its viewer while bob got 20 tags; from here nothing more
    // arrives while bob keeps receiving and the relay's viewer is still connected (the relay
    // holds the stream for its resume grace).
    const n = atRelay.result.parser.tags.length;
    const bobNow = bobAtGate.result.parser.tags.length;
    await bobAtGate.waitFor((r) => r.parser.tags.length >= bobNow + 10, 10_000, 'bob still receiving');
    assert.equal(atRelay.result.parser.tags.length, n, 'no media reached the relay after the cut');
    assert.equal(atRelay.result.closed, false, 'the relay viewer was still connected');
    // The push's grant is spent: a stream.stop for it now finds nothing.
    assert.deepEqual(await push.stop(jti), { ok: true, jti, pushStopped: false, sessionsClosed: 0 });
  } finally {
    aliceAtGate.close();
    bobAtGate.close();
    atRelay.close();
  }
});

test('stream.stop by jti is one table call: the gate side cuts the push of that grant, other viewers play on', async () => {
  const jti = await alicePushing();
  const bobAtGate = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint({ viewer: 'bob' })) });
  try {
    await bobAtGate.waitForKeyframe(10_000);
    // The gate's closeByJti is the same table call push.stop makes: it reaches the push too.
    assert.equal(m.gate.closeByJti(jti), 1);
    const tagsAtCut = tagsToRelay;
    await waitUntil(() => push.active().length === 0, 5000, 'the push connection closed');
    const bobAtCut = bobAtGate.result.parser.tags.length;
    await bobAtGate.waitFor((r) => r.parser.tags.length >= bobAtCut + 20, 10_000, 'bob still receiving');
    assert.equal(tagsToRelay, tagsAtCut, 'not one media tag was handed to the relay after the cut');
    assert.equal(bobAtGate.result.closed, false);
    assert.equal(m.gate.sessions.count('view'), 1);
  } finally {
    bobAtGate.close();
  }
});

test("exp by the injected clock cuts a push while no media flows (the table's sweep), within 1 s", async () => {
  let skew = 0;
  let attached = 0;
  /** When the push itself hung up on the relay (its cut), not when a relay dropped it. */
  let hungUpAt: number | undefined;
  // A stalled stream: the push holds its lease and tap, but no chunk comes to check exp against.
  const stalled = {
    acquire: () => () => undefined,
    attach: () => {
      attached++;
      return () => undefined;
    },
  };
  const own = createPushService({
    serial: 'CAM-0001',
    grants: m.f.gate,
    stream: stalled,
    publish: (o: RtmpClientOptions) => {
      const c = countingPublish(o);
      return { ...c, close: () => ((hungUpAt ??= Date.now()), c.close()) };
    },
    relayAllowList: [],
    clock: { ...systemClock, now: () => Date.now() + skew },
    logger: silentLogger(),
    retryMs: 300,
    viewerKeys,
  });
  try {
    const r = await own.start(m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 60 }));
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(attached, 1);
    assert.equal(own.active().length, 1);
    // The camera's clock moves past exp (an NTP step); no timer set for 60 s of real time fires.
    skew = 61_000;
    const t0 = Date.now();
    // The cut hangs up on the relay at once; the connection's close completes after it.
    await waitUntil(() => hungUpAt !== undefined, 3000, 'the push hung up at exp');
    assert.ok(hungUpAt! - t0 < 1000, `cut ${hungUpAt! - t0} ms after exp`);
    await waitUntil(() => own.active().length === 0, 5000, 'the push connection closed');
  } finally {
    await own.close();
  }
});
