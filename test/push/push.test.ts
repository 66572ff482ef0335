/**
 * Push mode into a second node-media-server acting as the cloud relay (own process). A relay
 * grant for this camera pushes until stop/exp, sealed to the grant viewer's key from the
 * membership: what the relay serves opens for that viewer only. A grant without `relay`, for
 * another serial, or whose viewer has no key pushes nothing. Grants are really signed and go
 * through the real grant gate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { createPushService, relayAllowed, describeRelay, type PushService } from '../../agent/push/push.ts';
import { Writable } from 'node:stream';
import { createLogger } from '../../agent/log.ts';
import { freePort } from '../../harness/mosquitto.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { FrameOpener } from '../../agent/sealing/opener.ts';
import { isSealableVideo } from '../../agent/sealing/frame.ts';
import { pullHttpFlv } from '../../harness/sealed-pull.ts';
import { makeViewer, type TestViewer } from '../../harness/viewer-keys.ts';
import { within } from '../../harness/wait.ts';

let m: MediaFixture;
let relay: ChildProcess;
let urls: { rtmpBase: string; httpBase: string };
let push: PushService;
let alice: TestViewer;
let mallory: TestViewer;
const relayPublishes: string[] = [];
/** Every line the camera's push service logged (JSON). */
let pushLog = '';

before(async () => {
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
        const o = JSON.parse(line) as {
          ready?: boolean;
          msg?: string;
          serial?: string;
          rtmpBase: string;
          httpBase: string;
        };
        if (o.ready) resolve(o);
        if (o.msg === 'relay: push started') relayPublishes.push(o.serial ?? '?');
      });
    }),
    60_000,
    'the relay child to print ready',
  );
  alice = await makeViewer('alice#1');
  mallory = await makeViewer('mallory#1');
  push = createPushService({
    serial: 'CAM-0001',
    grants: m.f.gate,
    stream: m.stream,
    ffmpegPath: m.stream.ffmpegPath,
    relayAllowList: [],
    clock: m.f.clock,
    logger: createLogger({
      level: 'debug',
      destination: new Writable({
        write(chunk, _enc, cb) {
          pushLog += chunk.toString();
          cb();
        },
      }),
    }),
    activity: m.activity,
    // The gate's table: one cut policy for its viewers and these pushes (as agent/media.ts composes it).
    sessions: m.gate.sessions,
    retryMs: 300,
    // Only alice is in the membership with a key; bob is a bound viewer without one.
    viewerKeys: mapViewerKeys({ alice: alice.key }),
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

test('a relay grant pushes the stream to the relay until stream.stop', async () => {
  const grant = m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001` });
  const r = await push.start(grant);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(m.ledValue(), '255', 'status light on while pushing');
  const viewer = FlvClient.http({ url: `${urls.httpBase}/live/CAM-0001.flv` });
  try {
    await viewer.waitForKeyframe(10_000);
    assert.equal(push.active().length, 1);
    assert.ok(relayPublishes.includes('CAM-0001'));
    const stopped = await push.stop(r.ok ? r.jti : '');
    assert.equal(stopped.pushStopped, true);
    assert.equal(push.active().length, 0);
    assert.equal(m.ledValue(), '0');
    // stop() resolved only once the push connection was closed; let what was already in flight land
    // (the relay keeps the publish open for its 30 s resume grace, so there is no end event to await).
    let n = viewer.result.parser.tags.length;
    for (const t0 = Date.now(); Date.now() - t0 < 5000;) {
      await new Promise((res) => setTimeout(res, 300));
      if (viewer.result.parser.tags.length === n) break;
      n = viewer.result.parser.tags.length;
    }
    // Positive signal 2: capture is still producing media the push could have sent (a tap on the
    // hub sees new video), so the silence at the relay below is the stop, not an idle camera.
    let tapBytes = 0;
    const detach = m.stream.attach({ write: (c) => void (tapBytes += c.length), end: () => undefined });
    try {
      const t0 = Date.now();
      while (tapBytes < 20_000 && Date.now() - t0 < 10_000) await new Promise((res) => setTimeout(res, 20));
      assert.ok(tapBytes >= 20_000, `capture kept producing (${tapBytes} bytes on a hub tap)`);
    } finally {
      detach();
    }
    assert.equal(viewer.result.parser.tags.length, n, 'no more media reaches the relay after stop');
    assert.equal(viewer.result.closed, false, 'the relay viewer was still connected: silence is the stop');
  } finally {
    viewer.close();
  }
});

test('a push grant ends at its exp', async () => {
  const grant = m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 2 });
  const r = await push.start(grant);
  assert.equal(r.ok, true);
  assert.equal(push.active().length, 1);
  // Cut at exp (2 s); closing the connection may take a moment more on a loaded machine.
  const until = Date.now() + 8000;
  while (push.active().length > 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
  assert.equal(push.active().length, 0);
});

test('a grant without relay, for another serial, or replayed pushes nothing', async () => {
  const before = relayPublishes.length;
  const noRelay = await push.start(m.f.mint());
  assert.deepEqual([noRelay.ok, !noRelay.ok && noRelay.reason], [false, 'scope_not_allowed']);
  const other = await push.start(m.f.mint({ serial: 'CAM-0002', relay: `${urls.rtmpBase}/CAM-0002` }));
  assert.deepEqual([other.ok, !other.ok && other.reason], [false, 'wrong_audience']);
  const badScheme = await push.start(m.f.mint({ relay: 'http://127.0.0.1:1/live/CAM-0001' }));
  assert.equal(badScheme.ok, false);
  const g = m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 60 });
  const first = await push.start(g);
  assert.equal(first.ok, true);
  const until = Date.now() + 8000;
  while (relayPublishes.length === before && Date.now() < until)
    await new Promise((res) => setTimeout(res, 50));
  await push.stop(first.ok ? first.jti : '');
  const again = await push.start(g);
  assert.deepEqual([again.ok, !again.ok && again.reason], [false, 'replayed']);
  assert.equal(push.active().length, 0);
  assert.deepEqual(
    relayPublishes.slice(before),
    ['CAM-0001'],
    'the relay saw exactly one publish: the accepted grant',
  );
  const refusals = m.f.events.events
    .filter((e) => e.type === 'grant_refused' && e.source === 'mqtt:stream.start')
    .map((e) => e.reason);
  assert.ok(refusals.includes('wrong_audience') && refusals.includes('scope_not_allowed'));
});

test("logs never carry the relay's key: the push's connection error is logged, the key is not", async () => {
  const closed = await freePort();
  const key = 'StreamKey9d81c2f0';
  const pathKey = 'PathKey44aa17e3';
  const r = await push.start(
    m.f.mint({ relay: `rtmp://127.0.0.1:${closed}/live/${pathKey}?key=${key}`, ttlSeconds: 30 }),
  );
  assert.equal(r.ok, true, JSON.stringify(r));
  const failuresBefore = push.counters.failures;
  try {
    // Positive signal: the push really failed against that URL and the failure was logged.
    await within(
      (async () => {
        while (push.counters.failures === failuresBefore || !/ERR_PUSH_EXITED/.test(pushLog))
          await new Promise((res) => setTimeout(res, 20));
      })(),
      20_000,
      'a logged push failure',
    );
  } finally {
    await push.stop(r.ok ? r.jti : '');
  }
  assert.match(pushLog, /ECONNREFUSED/, 'the connection error is in the log');
  assert.ok(!pushLog.includes(key), 'the query key leaked into the log');
  assert.ok(!pushLog.includes(pathKey), 'the path key leaked into the log');
  assert.ok(!JSON.stringify(push.active()).includes(key));
});

test('relay URL checks: scheme, credentials, allow list; describeRelay keeps host and app only', () => {
  assert.equal(relayAllowed('rtmp://relay.example/live/CAM-0001', []), true);
  assert.equal(relayAllowed('rtmps://relay.example/live/CAM-0001', ['rtmps://relay.example/']), true);
  assert.equal(relayAllowed('rtmp://relay.example/live/CAM-0001', ['rtmps://relay.example/']), false);
  assert.equal(relayAllowed('http://relay.example/live/CAM-0001', []), false);
  assert.equal(relayAllowed('rtmp://user:pw@relay.example/live/x', []), false);
  assert.equal(relayAllowed('not a url', []), false);
  // An allow-list entry matches at a path boundary only: a look-alike host is not a prefix match.
  assert.equal(relayAllowed('rtmp://relay.example.evil/live/CAM-0001', ['rtmp://relay.example']), false);
  assert.equal(relayAllowed('rtmp://relay.example/live/CAM-0001', ['rtmp://relay.example']), true);
  assert.equal(
    describeRelay('rtmp://relay.example:1935/live/CAM-0001?key=secret'),
    'rtmp://relay.example:1935/live/[redacted]?[redacted]',
  );
});

test('the push is sealed: through the relay the bound viewer opens every frame, a wrong key none', async () => {
  const grant = m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001` });
  const r = await push.start(grant);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(push.active()[0]?.sealedTo, 'alice#1');
  const pulled = pullHttpFlv(`${urls.httpBase}/live/CAM-0001.flv`);
  try {
    assert.ok(await pulled.waitFor(25, 15_000), `only ${pulled.video.length} video tags through the relay`);
  } finally {
    pulled.close();
    await push.stop(r.ok ? r.jti : '');
  }
  const coded = pulled.video.filter((b) => isSealableVideo(b));
  assert.ok(coded.length >= 20);
  const forAlice = new FrameOpener({ serial: 'CAM-0001', keyPair: alice.keyPair });
  const forMallory = new FrameOpener({ serial: 'CAM-0001', keyPair: mallory.keyPair });
  let opened = 0;
  let wrong = 0;
  for (const b of coded) {
    const a = await forAlice.open(b);
    assert.ok(a.ok, `bound viewer failed on a frame: ${!a.ok && a.code}`);
    opened++;
    // The opened frame is real H.264: a length-prefixed NAL of a coded slice type.
    if (a.ok) assert.ok([1, 5, 6, 9].includes(a.body[9]! & 0x1f));
    if ((await forMallory.open(b)).ok) wrong++;
  }
  assert.equal(opened, coded.length);
  assert.equal(wrong, 0, 'a wrong viewer opened a frame');
  assert.equal(forMallory.sealedForMe, false);
  assert.ok(push.counters.framesSealed >= coded.length);
});

test('a push grant whose viewer has no key in the membership is refused; the relay sees nothing', async () => {
  const before = relayPublishes.length;
  const started = push.counters.started;
  const r = await push.start(m.f.mint({ viewer: 'bob', relay: `${urls.rtmpBase}/CAM-0001` }));
  assert.deepEqual([r.ok, !r.ok && r.reason], [false, 'viewer_key_missing']);
  assert.equal(push.active().length, 0);
  assert.equal(push.counters.started, started);
  // Positive signal instead of a fixed sleep: alice's grant on the same relay publishes now; had
  // bob's push gone out, its publish would be among those seen by then.
  const control = await push.start(m.f.mint({ relay: `${urls.rtmpBase}/CAM-0001`, ttlSeconds: 60 }));
  assert.equal(control.ok, true, JSON.stringify(control));
  try {
    await within(
      (async () => {
        while (relayPublishes.length === before) await new Promise((res) => setTimeout(res, 20));
      })(),
      15_000,
      "the control push's publish at the relay",
    );
  } finally {
    await push.stop(control.ok ? control.jti : '');
  }
  assert.deepEqual(relayPublishes.slice(before), ['CAM-0001'], 'only the control published');
  const e = m.f.events.events.filter((x) => x.type === 'grant_refused' && x.reason === 'viewer_key_missing');
  assert.equal(e.length, 1);
  assert.equal(e[0]!.sub, 'bob');
});
