/**
 * A viewer whose capture cannot start is answered, not held: the gate keeps its response head back
 * until the first keyframe, and a session that gets none is cut with a coded answer — as soon as
 * the capture supervisor reports a second failure in a row (camera probe error, ffmpeg exiting; a
 * single exit after a good run is restarted and the viewer keeps waiting), or after
 * `gate.firstKeyframeTimeoutSeconds` by the camera's clock. Real grant gate (the accept is
 * audited first), real stream service and in-process hub, a camera driver that fails the way a
 * broken board does, real ffmpeg where ffmpeg is meant to exit; the bound runs on the test clock.
 * Not one media byte reaches the viewer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { FlvClient } from '../../harness/flv-client.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { ffmpegPath } from '../../harness/ffmpeg.ts';
import { onceWithin, quietFor, waitUntil, within } from '../../harness/wait.ts';
import { makeGrantFixture, NOW_MS, type GrantFixture } from '../../harness/grants-fixture.ts';
import { createGate, FIRST_MESSAGE_PROTOCOL, type Gate } from '../../agent/gate/gate.ts';
import { createStreamService, type StreamService } from '../../agent/stream/service.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { CameraError, type CameraDriver, type CaptureArgs } from '../../drivers/camera/types.ts';

/** How the board's camera behaves for the next viewer. */
let camera: 'probe_fails' | 'stalls' | 'ffmpeg_exits' = 'probe_fails';
/** A stalled probe, let go at the end so the supervisor can stop. */
let unstall: (() => void) | undefined;
const driver: CameraDriver = {
  name: 'v4l2',
  async prepare(): Promise<CaptureArgs> {
    if (camera === 'probe_fails')
      throw new CameraError('ERR_CAMERA_PROBE', 'VIDIOC_QUERYCAP on /dev/video0: Input/output error');
    if (camera === 'stalls') {
      await new Promise<void>((r) => (unstall = r));
      throw new CameraError('ERR_CAMERA_PROBE', 'probe released at teardown');
    }
    // ffmpeg starts and exits at once: an input it cannot open.
    return {
      input: ['-f', 'lavfi', '-i', 'no_such_source_filter'],
      video: ['-c:v', 'libx264'],
      describe: 'an input ffmpeg cannot open',
    };
  },
};

const clock = new TestClock(NOW_MS);
let f: GrantFixture;
let stream: StreamService;
let gate: Gate;
const privacy = Object.assign(new EventEmitter(), { isOn: () => false });

before(async () => {
  f = await makeGrantFixture();
  f.clock.now = () => clock.now();
  const { config } = loadConfig(undefined, {});
  stream = createStreamService({
    serial: 'CAM-0001',
    stream: { ...config.stream, mode: 'on-demand', idleStopSeconds: 1 },
    camera: config.camera,
    logger: silentLogger(),
    privacy,
    ffmpegPath: ffmpegPath(),
    cameraDriver: driver,
    clock,
    random: () => 0.5,
    backoff: { initialMs: 200, maxMs: 2000 },
  });
  await stream.start();
  gate = createGate({
    serial: 'CAM-0001',
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false },
    grants: f.gate,
    stream,
    privacy,
    clock,
    logger: silentLogger(),
  });
  await gate.listen();
});

after(async () => {
  unstall?.();
  await gate?.close();
  await stream?.stop();
  f?.cleanup();
});

const url = () => `${gate.url}/live/CAM-0001.flv`;
const jtiOf = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;

/** The accept was audited (durably, before any answer): its jti is in the decision log as accepted. */
function assertAuditedAccept(token: string): void {
  const lines = readFileSync(f.paths.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { decision?: string; jti?: string });
  assert.ok(
    lines.some((l) => l.decision === 'accept' && l.jti === jtiOf(token)),
    'the accept is in the decision log',
  );
}

/**
 * Waits for capture's first failure (reported at the lease), checks the viewer is still waiting,
 * then moves the clock past the retry delay so the supervisor tries again (and fails again).
 */
async function firstFailureThenRetry(first: Promise<unknown>, waiting: () => boolean): Promise<void> {
  await first;
  await quietFor(50, 'no answer to the viewer in flight after one capture failure');
  assert.ok(waiting(), 'one failure alone does not answer the viewer (capture is retried)');
  await clock.advance(200);
}

/** Lets the last lease's idle stop run, so the next test starts capture afresh. */
async function settle(): Promise<void> {
  await clock.advance(1500);
  assert.equal(gate.sessions.size, 0);
}

test('camera probe fails: an accepted HTTP viewer gets 503 capture_failed naming the camera error, no media', async () => {
  camera = 'probe_fails';
  const token = f.mint();
  const failed = onceWithin(stream.supervisorEvents, 'failed', 5000, 'the first probe failure');
  const c = FlvClient.http({ url: url(), headers: { authorization: `Bearer ${token}` } });
  try {
    await firstFailureThenRetry(failed, () => c.result.status === 0 && !c.result.closed);
    const r = await c.waitClosed(5000);
    assert.equal(r.status, 503);
    assert.deepEqual(c.json(), { error: 'capture_failed', code: 'ERR_CAMERA_PROBE' });
    assert.equal(r.flvBodyBytes, 0);
    assert.equal(r.body.includes(Buffer.from('FLV')), false);
    assert.equal(r.headers['content-type'], 'application/json');
    assertAuditedAccept(token);
    assert.equal(gate.counters.accepted, 1);
    assert.equal(gate.counters.closedByReason.capture_failed, 1);
  } finally {
    c.close();
  }
  await settle();
});

test('camera probe fails: a WebSocket viewer (headers) gets {"error":"capture_failed"} and close 4503, no media', async () => {
  camera = 'probe_fails';
  const failed = onceWithin(stream.supervisorEvents, 'failed', 5000, 'the first probe failure');
  const c = FlvClient.ws({
    url: url().replace('http:', 'ws:'),
    headers: { authorization: `Bearer ${f.mint()}` },
  });
  try {
    await firstFailureThenRetry(failed, () => !c.result.closed);
    const r = await c.waitClosed(5000);
    assert.equal(r.status, 101);
    assert.deepEqual(c.json(), { error: 'capture_failed', code: 'ERR_CAMERA_PROBE' });
    assert.equal(r.flvBodyBytes, 0);
  } finally {
    c.close();
  }
  await settle();
});

test('ffmpeg keeps exiting: a first-message WebSocket viewer gets capture_failed ERR_CAPTURE_EXITED, no media', async () => {
  camera = 'ffmpeg_exits';
  const token = f.mint();
  const failed = onceWithin(stream.supervisorEvents, 'failed', 15_000, 'the first ffmpeg exit');
  let closed = false;
  const answered = new Promise<{ texts: string[]; binary: number; code: number }>((resolve) => {
    const ws = new WebSocket(url().replace('http:', 'ws:'), [FIRST_MESSAGE_PROTOCOL]);
    const texts: string[] = [];
    let binary = 0;
    ws.on('open', () => ws.send(JSON.stringify({ grant: token })));
    ws.on('message', (d: Buffer, isBinary) => (isBinary ? (binary += d.length) : texts.push(String(d))));
    ws.on('close', (code) => {
      closed = true;
      resolve({ texts, binary, code });
    });
    ws.on('error', () => undefined);
  });
  await firstFailureThenRetry(failed, () => !closed);
  const r = await within(answered, 15_000, "the gate's answer to a viewer whose ffmpeg exits again");
  assert.deepEqual(
    r.texts.map((t) => JSON.parse(t) as unknown),
    [{ error: 'capture_failed', code: 'ERR_CAPTURE_EXITED' }],
  );
  assert.equal(r.code, 4503);
  assert.equal(r.binary, 0);
  assertAuditedAccept(token);
  await settle();
});

test('a probe that never answers: the viewer is answered 503 no_media at the bound, not before', async () => {
  camera = 'stalls';
  const { config } = loadConfig(undefined, {});
  const bound = config.gate.firstKeyframeTimeoutSeconds * 1000;
  assert.equal(bound, 20_000, 'the documented default');
  const c = FlvClient.http({ url: url(), headers: { authorization: `Bearer ${f.mint()}` } });
  try {
    // The accept is in; the viewer waits for its first keyframe (the probe is stuck).
    await waitUntil(() => gate.sessions.size > 0, 5000, 'the accepted session', { stepMs: 10 });
    await clock.advance(bound - 1);
    await quietFor(50, 'no answer in flight to the viewer before the bound');
    assert.equal(c.result.status, 0, 'no answer before the bound');
    assert.equal(c.result.closed, false);
    await clock.advance(1);
    const r = await c.waitClosed(5000);
    assert.equal(r.status, 503);
    assert.deepEqual(c.json(), { error: 'no_media' });
    assert.equal(r.flvBodyBytes, 0);
    assert.equal(gate.counters.closedByReason.no_media, 1);
  } finally {
    c.close();
  }
  unstall?.();
  await settle();
});
