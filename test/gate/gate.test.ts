/**
 * The viewer gate end to end: real signed grants through the real grant gate, real ffmpeg test
 * pattern into the real loopback node-media-server hub, a real FLV client counting bytes on the
 * socket. Accept → FLV header, AVC sequence header, keyframe. Every refusal → 0 FLV body bytes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { onceWithin, waitUntil } from '../../harness/wait.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { ffmpegPath } from '../../harness/ffmpeg.ts';
import { createGate, type Gate } from '../../agent/gate/gate.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { systemClock } from '../../agent/clock.ts';
import type { FlvSink } from '../../agent/stream/media-hub.ts';
import type { DecisionContext } from '../../agent/grants/types.ts';
import type { RefusalReason } from '../../agent/grants/reasons.ts';
import { listeningPorts } from '../../harness/listening.ts';

let m: MediaFixture;
before(async () => {
  m = await makeMediaFixture({ mode: 'always' });
});
after(async () => {
  await m?.close();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function refused(c: FlvClient, status: number, error: string): Promise<void> {
  const r = await c.waitClosed(5000);
  assert.equal(r.status, status, `status for ${error}`);
  assert.deepEqual(c.json(), { error });
  assert.equal(r.flvBodyBytes, 0, 'no FLV body bytes');
  assert.equal(r.body.includes(Buffer.from('FLV')), false);
  assert.ok(r.socketBytes < 1024, `only a small refusal crossed the socket (${r.socketBytes} bytes)`);
  assert.equal(r.parser.tags.length, 0);
}

test('a valid grant gets an FLV header, the AVC sequence header and a keyframe (HTTP)', async () => {
  const c = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await c.waitFor((r) => r.status > 0, 8000, 'a response');
    assert.equal(c.result.status, 200, `refused: ${c.result.body.toString()}`);
    const r = await c.waitForKeyframe(8000);
    assert.equal(r.headers['content-type'], 'video/x-flv');
    assert.ok(r.parser.sawHeader && r.parser.sawSequenceHeader && r.parser.sawKeyframe);
    assert.equal(m.gate.sessions.size, 1);
    assert.equal(m.ledValue(), '255', 'status light on while a viewer watches');
  } finally {
    c.close();
  }
  await waitUntil(() => m.gate.sessions.size === 0, 3000, 'no gate session left');
  assert.equal(m.ledValue(), '0', 'status light off after the last viewer');
});

test('a valid grant over WebSocket gets the same', async () => {
  const c = FlvClient.ws({ url: m.url().replace('http:', 'ws:'), headers: bearer(m.f.mint()) });
  try {
    const r = await c.waitForKeyframe(8000);
    assert.equal(r.status, 101);
  } finally {
    c.close();
  }
});

test('refusals carry 0 FLV body bytes, each with its reason', async (t) => {
  const used = m.f.mint();
  const first = FlvClient.http({ url: m.url(), headers: bearer(used) });
  await first.waitForKeyframe(8000);
  first.close();
  const rows: Array<{
    name: string;
    make: () => FlvClient;
    status: number;
    error: string;
    setup?: () => void;
    teardown?: () => void;
  }> = [
    { name: 'no grant', make: () => FlvClient.http({ url: m.url() }), status: 401, error: 'missing' },
    {
      name: 'garbage',
      make: () => FlvClient.http({ url: m.url(), headers: bearer('garbage.garbage.garbage') }),
      status: 401,
      error: 'malformed',
    },
    {
      name: 'not a Bearer header',
      make: () => FlvClient.http({ url: m.url(), headers: { authorization: `Basic ${m.f.mint()}` } }),
      status: 401,
      error: 'malformed',
    },
    {
      name: 'grant for another serial',
      make: () => FlvClient.http({ url: m.url(), headers: bearer(m.f.mint({ serial: 'CAM-0002' })) }),
      status: 403,
      error: 'wrong_audience',
    },
    {
      name: 'valid grant, path of another serial',
      make: () => FlvClient.http({ url: m.url('CAM-0002'), headers: bearer(m.f.mint()) }),
      status: 403,
      error: 'wrong_audience',
    },
    {
      name: 'expired',
      make: () =>
        FlvClient.http({
          url: m.url(),
          headers: bearer(m.f.mint({ now: Date.now() / 1000 - 400, ttlSeconds: 300 })),
        }),
      status: 403,
      error: 'expired',
    },
    {
      name: 'replayed',
      make: () => FlvClient.http({ url: m.url(), headers: bearer(used) }),
      status: 403,
      error: 'replayed',
    },
    {
      name: 'viewer not bound',
      make: () => FlvClient.http({ url: m.url(), headers: bearer(m.f.mint({ viewer: 'mallory' })) }),
      status: 403,
      error: 'viewer_not_bound',
    },
    {
      name: 'push grant used to view',
      make: () =>
        FlvClient.http({
          url: m.url(),
          headers: bearer(m.f.mint({ relay: 'rtmp://127.0.0.1:1/live/CAM-0001' })),
        }),
      status: 403,
      error: 'scope_not_allowed',
    },
    {
      name: 'query token when disallowed',
      make: () => FlvClient.http({ url: `${m.url()}?grant=${m.f.mint()}` }),
      status: 401,
      error: 'missing',
    },
    {
      name: 'WebSocket without a grant',
      make: () => FlvClient.ws({ url: m.url().replace('http:', 'ws:') }),
      status: 401,
      error: 'missing',
    },
    {
      name: 'privacy on',
      make: () => FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) }),
      status: 403,
      error: 'privacy_mode',
      setup: () => m.privacy.set(true),
      teardown: () => m.privacy.set(false),
    },
  ];
  for (const row of rows) {
    await t.test(row.name, async () => {
      row.setup?.();
      const c = row.make();
      try {
        await refused(c, row.status, row.error);
      } finally {
        c.close();
        row.teardown?.();
      }
    });
  }
  const events = m.f.events.events
    .filter((e) => e.type === 'grant_refused')
    .map((e): string | undefined => e.reason);
  for (const r of [
    'missing',
    'malformed',
    'wrong_audience',
    'expired',
    'replayed',
    'viewer_not_bound',
    'privacy_mode',
  ])
    assert.ok(events.includes(r), `security event for ${r}`);
});

test('the query token is accepted only when allowed', async () => {
  const g = await m.makeGate({ allowQueryToken: true });
  const c = FlvClient.http({ url: `${g.url}/live/CAM-0001.flv?grant=${m.f.mint()}` });
  try {
    await c.waitForKeyframe(8000);
  } finally {
    c.close();
  }
});

test("a session is cut exactly at its grant's exp by the gate's clock, and no byte leaves after the cut", async () => {
  // The gate runs on the manual test clock (the camera's clock): expiry is checked by moving it,
  // not by comparing wall-clock arrival times. The grant, the hub, the capture and the bytes are real.
  const clock = new TestClock(Date.now());
  const { config } = loadConfig(undefined, {});
  const gate = createGate({
    serial: 'CAM-0001',
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false },
    grants: m.f.gate,
    stream: m.stream,
    privacy: m.privacy,
    clock,
    logger: silentLogger(),
  });
  await gate.listen();
  const minted = clock.now() / 1000;
  const token = m.f.mint({ ttlSeconds: 30, now: minted });
  const exp = Math.floor(minted) + 30;
  const c = FlvClient.http({ url: `${gate.url}/live/CAM-0001.flv`, headers: bearer(token) });
  try {
    await c.waitForKeyframe(8000);
    assert.equal(gate.sessions.size, 1);
    await clock.advance(exp * 1000 - 1 - clock.now());
    assert.equal(gate.sessions.size, 1, 'still playing 1 ms before exp');
    assert.equal(c.result.closed, false);
    await clock.advance(1);
    assert.equal(gate.sessions.size, 0, 'cut at exp');
    const bytesAtCut = gate.counters.bytesOut;
    await c.waitClosed(4000);
    assert.equal(gate.counters.bytesOut, bytesAtCut, 'not one byte written after the cut');
    assert.ok(c.result.parser.tags.length > 0, 'the session really played up to the edge');
  } finally {
    c.close();
    await gate.close();
  }
});

/**
 * A gate whose clock (the camera's clock) jumps forward at the moment the hub hands it its first
 * media chunk: exp passes between the decision and the first byte. The jump is injected, the hub,
 * the capture and the bytes are real.
 */
async function gateWithClockJumpAtFirstChunk(jumpMs: number): Promise<{ gate: Gate; chunks: () => number }> {
  let skew = 0;
  let chunks = 0;
  const clock = { ...systemClock, now: () => Date.now() + skew };
  const stream = {
    acquire: () => m.stream.acquire(),
    attach: (sink: FlvSink) =>
      m.stream.attach({
        write(chunk) {
          if (++chunks === 1) skew = jumpMs;
          sink.write(chunk);
        },
        end: () => sink.end(),
      }),
  };
  const { config } = loadConfig(undefined, {});
  const gate = createGate({
    serial: 'CAM-0001',
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false },
    grants: m.f.gate,
    stream,
    privacy: m.privacy,
    clock,
    logger: silentLogger(),
  });
  await gate.listen();
  return { gate, chunks: () => chunks };
}

test('a grant that expired 20 s ago (inside the clock tolerance) is refused 403 expired, no byte, HTTP and WebSocket', async () => {
  // Positive signal first: capture is running and a fresh grant gets media right now.
  const fresh = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await fresh.waitForKeyframe(8000);
  } finally {
    fresh.close();
  }
  assert.equal(m.stream.hub.isLive(), true, 'the hub has a cached GOP to give away');
  const stale = () => bearer(m.f.mint({ now: Date.now() / 1000 - 320, ttlSeconds: 300 }));
  const http = FlvClient.http({ url: m.url(), headers: stale() });
  try {
    await refused(http, 403, 'expired');
  } finally {
    http.close();
  }
  const ws = FlvClient.ws({ url: m.url().replace('http:', 'ws:'), headers: stale() });
  try {
    await refused(ws, 403, 'expired');
  } finally {
    ws.close();
  }
});

for (const transport of ['http', 'ws'] as const) {
  test(`exp passing between the decision and the first media byte: not one media byte (${transport})`, async () => {
    const { gate, chunks } = await gateWithClockJumpAtFirstChunk(31_000);
    const url = `${gate.url}/live/CAM-0001.flv`;
    const token = m.f.mint({ ttlSeconds: 30 });
    const c =
      transport === 'http'
        ? FlvClient.http({ url, headers: bearer(token) })
        : FlvClient.ws({ url: url.replace('http:', 'ws:'), headers: bearer(token) });
    try {
      const r = await c.waitClosed(5000);
      // The grant was good at decision time and the hub delivered, but the head waits for the
      // first keyframe: HTTP gets 403 expired instead of a 200; WebSocket (already upgraded) gets
      // the same answer as a text message and a close.
      assert.equal(r.status, transport === 'http' ? 403 : 101);
      assert.deepEqual(c.json(), { error: 'expired' });
      assert.ok(chunks() >= 1, 'the hub handed the gate media (header + cached GOP)');
      assert.equal(r.flvBodyBytes, 0, `${r.flvBodyBytes} FLV bytes left after exp`);
      assert.equal(r.parser.tags.length, 0);
      assert.equal(gate.sessions.size, 0);
      assert.ok(gate.sessions.counters.closed >= 1);
    } finally {
      c.close();
      await gate.close();
    }
  });
}

test('device faults are refused as internal (503), not blamed on the caller: a throwing grant gate, a closing gate', async () => {
  const { config } = loadConfig(undefined, {});
  const reported: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let mode: 'throw' | 'hold' = 'throw';
  let entered = 0;
  const contexts: DecisionContext[] = [];
  const grants = {
    async decide(token: string | undefined, ctx: DecisionContext) {
      entered++;
      contexts.push(ctx);
      if (mode === 'throw') throw new Error('grant gate bug');
      await held;
      return m.f.gate.decide(token, ctx);
    },
    reportRefusal(reason: RefusalReason) {
      reported.push(reason);
    },
  };
  const gate = createGate({
    serial: 'CAM-0001',
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false },
    grants,
    stream: m.stream,
    privacy: m.privacy,
    clock: systemClock,
    logger: silentLogger(),
  });
  await gate.listen();
  const url = `${gate.url}/live/CAM-0001.flv`;
  try {
    const c = FlvClient.http({ url, headers: bearer(m.f.mint()) });
    try {
      await refused(c, 503, 'internal');
    } finally {
      c.close();
    }
    const w = FlvClient.ws({ url: url.replace('http:', 'ws:'), headers: bearer(m.f.mint()) });
    try {
      await refused(w, 503, 'internal');
    } finally {
      w.close();
    }
    assert.deepEqual(reported, ['internal', 'internal']);
    // The decision context carries the viewer's origin as typed fields; the printed source the
    // audit lines and events carry is derived from it, unchanged (`gate:<addr>`).
    assert.deepEqual(
      contexts.map((c) => ({ viewer: c.viewer, source: c.source, purpose: c.purpose })),
      [
        { viewer: { remote: '127.0.0.1', transport: 'http' }, source: 'gate:127.0.0.1', purpose: 'view' },
        { viewer: { remote: '127.0.0.1', transport: 'ws' }, source: 'gate:127.0.0.1', purpose: 'view' },
      ],
    );
    // A good grant whose decision is still running when the gate starts closing.
    mode = 'hold';
    const late = FlvClient.http({ url, headers: bearer(m.f.mint()) });
    try {
      await waitUntil(() => entered === 3, 3000, 'three viewers inside the gate');
      const closed = gate.close();
      release();
      await closed;
      const r = await late.waitClosed(3000);
      assert.equal(r.flvBodyBytes, 0);
      assert.equal(r.parser.tags.length, 0);
      assert.equal(reported.at(-1), 'internal', 'the closing gate reports internal, not malformed');
    } finally {
      late.close();
    }
  } finally {
    release();
    await gate.close();
  }
});

test('stream.stop for a jti cuts that session only', async () => {
  const tokA = m.f.mint({ jti: 'stop-me' });
  const tokB = m.f.mint();
  const ca = FlvClient.http({ url: m.url(), headers: bearer(tokA) });
  const cb = FlvClient.http({ url: m.url(), headers: bearer(tokB) });
  try {
    await Promise.all([ca.waitForKeyframe(), cb.waitForKeyframe()]);
    assert.equal(m.gate.closeByJti('stop-me'), 1);
    await ca.waitClosed(1000);
    // Not "nothing happened for 300 ms": B must keep receiving frames after A's cut (the positive
    // signal that its session is alive, not merely not closed yet).
    const tagsAtCut = cb.result.parser.tags.length;
    await cb.waitFor((r) => r.parser.tags.length >= tagsAtCut + 5, 5000, 'B still receiving tags');
    assert.equal(cb.result.closed, false);
    assert.equal(m.gate.sessions.list().filter((x) => x.jti === 'stop-me').length, 0);
    assert.equal(m.gate.sessions.size, 1);
  } finally {
    ca.close();
    cb.close();
  }
});

test('privacy on closes every session and stops capture; off lets a fresh grant in', async () => {
  const c = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await c.waitForKeyframe();
    m.privacy.set(true);
    await c.waitClosed(1000);
    await waitUntil(() => m.stream.capturePid() === undefined, 4000, 'capture stopped');
  } finally {
    c.close();
    m.privacy.set(false);
  }
  const again = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await again.waitForKeyframe(8000);
  } finally {
    again.close();
  }
});

test('POST and WebSocket publish attempts are refused and never reach the hub', async () => {
  let published = 0;
  const onPublish = () => published++;
  m.stream.hub.on('publish', onPublish);
  const runsBefore = m.stream.hub.counters.runs;
  const { methodNotAllowed: n405, notFound: n404 } = m.gate.counters;
  const flv = Buffer.concat([
    Buffer.from('FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'),
    Buffer.alloc(64),
  ]);
  const post = FlvClient.http({ url: m.url(), method: 'POST', headers: bearer(m.f.mint()), body: flv });
  const r = await post.waitClosed();
  assert.equal(r.status, 405);
  for (const protocol of ['post', 'publisher']) {
    const w = FlvClient.ws({ url: m.url().replace('http:', 'ws:'), headers: bearer(m.f.mint()), protocol });
    const wr = await w.waitClosed();
    assert.equal(wr.status, 405);
    w.close();
  }
  const put = FlvClient.http({ url: m.url(), method: 'PUT', headers: bearer(m.f.mint()), body: flv });
  assert.equal((await put.waitClosed()).status, 405);
  for (const path of [
    '/',
    '/live/CAM-0001',
    '/api/v1/streams',
    '/admin/',
    '/live/CAM-0001.flv/x',
    '/live/CAM-0001.m3u8',
  ]) {
    const c = FlvClient.http({ url: `${m.gate.url}${path}`, headers: bearer(m.f.mint()) });
    const cr = await c.waitClosed();
    assert.equal(cr.status, 404, path);
    assert.equal(cr.flvBodyBytes, 0);
  }
  m.stream.hub.off('publish', onPublish);
  // The positive signal: the gate itself turned each attempt away (not a dead hub or a lost request).
  assert.equal(
    m.gate.counters.methodNotAllowed - n405,
    4,
    'POST, PUT and both WS publishers answered 405 by the gate',
  );
  assert.equal(m.gate.counters.notFound - n404, 6, 'every other path answered 404 by the gate');
  assert.ok(m.stream.hub.isLive(), 'the hub was live and could have taken a publish');
  assert.equal(published, 0, 'no publish reached the hub');
  assert.equal(m.stream.hub.counters.runs, runsBefore, 'the hub took no publish but the running capture');
});

test('CORS preflight is answered only for configured origins', async () => {
  const g = await m.makeGate({ viewerOrigins: ['https://viewer.example'] });
  const ok = FlvClient.http({
    url: `${g.url}/live/CAM-0001.flv`,
    method: 'OPTIONS',
    headers: {
      origin: 'https://viewer.example',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization',
    },
  });
  const r = await ok.waitClosed();
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], 'https://viewer.example');
  assert.match(r.headers['access-control-allow-headers'] ?? '', /Authorization/i);
  const bad = FlvClient.http({
    url: `${g.url}/live/CAM-0001.flv`,
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
  });
  const br = await bad.waitClosed();
  assert.equal(br.status, 403);
  assert.equal(br.headers['access-control-allow-origin'], undefined);
});

test('max viewers and the per-address refusal rate limit', async () => {
  const g = await m.makeGate({ maxViewers: 1, refusalRateLimit: { perMinute: 3 } });
  const url = `${g.url}/live/CAM-0001.flv`;
  const one = FlvClient.http({ url, headers: bearer(m.f.mint()) });
  try {
    await one.waitForKeyframe();
    const two = FlvClient.http({ url, headers: bearer(m.f.mint()) });
    await refused(two, 403, 'too_many_viewers');
  } finally {
    one.close();
  }
  for (let i = 0; i < 2; i++) await refused(FlvClient.http({ url }), 401, 'missing');
  const limited = FlvClient.http({ url, headers: bearer(m.f.mint()) });
  const r = await limited.waitClosed();
  assert.equal(r.status, 429);
  assert.equal(r.flvBodyBytes, 0);
});

test('ffmpeg killed mid-stream: the pipeline comes back and viewers rejoin', async () => {
  const c = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await c.waitForKeyframe();
    const pid = m.stream.capturePid();
    assert.ok(pid);
    const restarted = onceWithin(
      m.stream.supervisorEvents,
      'started',
      30_000,
      'capture restarted after SIGKILL',
    );
    process.kill(pid, 'SIGKILL');
    await restarted;
    assert.notEqual(m.stream.capturePid(), pid);
    // The viewer still attached keeps receiving the new run's frames.
    const before = c.result.parser.tags.length;
    await c.waitFor(
      (r) => r.parser.tags.slice(before).some((t) => t.frameType === 1),
      8000,
      'a keyframe after restart',
    );
  } finally {
    c.close();
  }
  const rejoin = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await rejoin.waitForKeyframe(8000);
  } finally {
    rejoin.close();
  }
});

test('the hub itself: no port of this process serves a local RTMP player or takes a publisher', async () => {
  const { execFile } = await import('node:child_process');
  const hub = m.stream.hub;
  const runsBefore = hub.counters.runs;
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(
        ffmpegPath(),
        ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args],
        { timeout: 15_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` }),
      );
    });
  // The hub has no listener (capture's ffmpeg writes to a pipe): every port there is belongs to a
  // gate, and none of them speaks RTMP.
  const ports = listeningPorts();
  assert.ok(ports.length >= 1);
  for (const port of ports) {
    const base = `rtmp://127.0.0.1:${port}/live/CAM-0001`;
    const play = await run(['-rw_timeout', '3000000', '-i', base, '-t', '1', '-f', 'null', '-']);
    assert.notEqual(play.code, 0, `a native RTMP play on port ${port} does not get a stream`);
    const pub = await run([
      '-rw_timeout',
      '3000000',
      '-re',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=64x64:rate=5',
      '-t',
      '2',
      '-c:v',
      'libx264',
      '-f',
      'flv',
      base,
    ]);
    assert.notEqual(pub.code, 0, `an RTMP publisher on port ${port} is cut off`);
  }
  assert.equal(hub.counters.runs, runsBefore, 'no publish reached the hub');
  // The real pipeline is untouched: a viewer still gets a keyframe.
  const c = FlvClient.http({ url: m.url(), headers: bearer(m.f.mint()) });
  try {
    await c.waitForKeyframe(8000);
  } finally {
    c.close();
  }
});
