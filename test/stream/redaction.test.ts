/**
 * Issue 12 #4: no stream key reaches a log, an audit line or a queued event. Secrets are planted in
 * a relay URL's query, userinfo and path, and in a capture output URL's query; the push and the
 * capture fail against them (real ffmpeg, the capture's, echoes whole URLs in its errors), then
 * every log line, the audit files and the on-disk event queue are scanned. (The hub itself has no
 * URL or key any more: capture writes to a pipe.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { createLogger } from '../../agent/log.ts';
import { EventQueue } from '../../agent/audit/event-queue.ts';
import { createPushService } from '../../agent/push/push.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { makeViewer } from '../../harness/viewer-keys.ts';
import { CaptureSupervisor } from '../../agent/stream/supervisor.ts';
import { redactText, redactUrl } from '../../agent/redact.ts';
import { testPatternArgs } from '../../drivers/camera/testpattern.ts';
import type { CameraRequest } from '../../drivers/camera/types.ts';
import { freePort } from '../../harness/mosquitto.ts';
import { makeMediaFixture } from '../../harness/media-fixture.ts';
import { waitUntil, within } from '../../harness/wait.ts';

const SECRETS = {
  query: 'QuerySecret7f3a9c',
  path: 'PathSecret51be02',
  user: 'UserSecret0c9d44',
  password: 'PassSecret88e1aa',
};

test('redactUrl / redactText: query, userinfo, fragment and media path keys never survive', () => {
  assert.equal(
    redactUrl('rtmp://u:p@relay.example:1935/live/abc?key=x#f'),
    'rtmp://[redacted]@relay.example:1935/live/[redacted]?[redacted]#[redacted]',
  );
  assert.equal(redactUrl('https://host/v1/provision?sig=x'), 'https://host/v1/provision?[redacted]');
  assert.equal(redactUrl('not a url'), '[redacted]');
  const line = `rtmp://127.0.0.1:1/live/${SECRETS.path}?key=${SECRETS.query}: Connection refused`;
  assert.equal(redactText(line), 'rtmp://127.0.0.1:1/live/[redacted]?[redacted]: Connection refused');
});

test(
  'planted relay and capture output keys reach no log line, audit file or queued event',
  { timeout: 90_000 }, // ffmpeg: the agent's own (m.stream.ffmpegPath), packaged when the system has none
  async (t) => {
    let logText = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logText += chunk.toString();
        cb();
      },
    });
    const logger = createLogger({ level: 'debug', destination: sink });
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const qdir = mkdtempSync(join(tmpdir(), 'lenscap-redact-'));
    const queue = EventQueue.open({
      file: join(qdir, 'queue.jsonl'),
      serial: 'CAM-0001',
      maxEvents: 1000,
      maxBytes: 1 << 20,
      clock: { now: () => Date.now() },
      logger,
    });
    const m = await makeMediaFixture({ mode: 'always', logger, alsoEmit: queue });
    t.after(async () => {
      await m.close();
      queue.close();
      rmSync(qdir, { recursive: true, force: true });
    });
    const captureKey = 'CaptureKey4d17e2b9';

    const closed = await freePort();
    const push = createPushService({
      serial: 'CAM-0001',
      grants: m.f.gate,
      stream: m.stream,
      ffmpegPath: m.stream.ffmpegPath,
      relayAllowList: [],
      clock: m.f.clock,
      logger,
      retryMs: 200,
      viewerKeys: mapViewerKeys({ alice: (await makeViewer('alice#1')).key }),
    });
    t.after(() => push.close());

    // 1. An accepted push to a relay that refuses the connection (the push's own RTMP client: its
    // errors name host and port only, and the push registers the URL's key parts regardless).
    const relay = `rtmp://127.0.0.1:${closed}/live/${SECRETS.path}?key=${SECRETS.query}`;
    const r = await push.start(m.f.mint({ relay, ttlSeconds: 60 }));
    assert.equal(r.ok, true, JSON.stringify(r));
    // Positive signal: the push really dialled, failed, and its error went through the log path.
    await waitUntil(() => push.counters.failures >= 2, 30_000, 'the push to fail against the relay (twice)');
    assert.match(logText, /ERR_PUSH_EXITED/);
    assert.match(logText, /ECONNREFUSED/, "the connection's own error text reached the log");
    await push.stop(r.ok ? r.jti : '');

    // 2. A relay URL with credentials: refused by the grant gate, recorded, reported.
    const withCreds = `rtmp://${SECRETS.user}:${SECRETS.password}@127.0.0.1:${closed}/live/x`;
    const refused = await push.start(m.f.mint({ relay: withCreds }));
    assert.equal(!refused.ok && refused.reason, 'relay_not_allowed');

    // 3. The capture supervisor failing on an RTMP output URL (its port closed here): ffmpeg's error
    //    carries the key in the query.
    const sup = new CaptureSupervisor({
      ffmpegPath: m.stream.ffmpegPath,
      camera: {
        name: 'testpattern',
        prepare: async (req: CameraRequest) => testPatternArgs(req, { hasDrawtext: false }),
      } as never,
      request: {
        device: '/dev/video0',
        width: 160,
        height: 90,
        fps: 10,
        gopSeconds: 1,
        bitrateKbps: 200,
        label: 'x',
        color: 'white',
      },
      output: `rtmp://127.0.0.1:${closed}/live/CAM-0001?k=${captureKey}`,
      logger,
      backoff: { initialMs: 100, maxMs: 200 },
    });
    const failed = new Promise<void>((res) => sup.once('failed', () => res()));
    sup.start();
    await within(failed, 20_000, 'the capture failure');
    await sup.stop();
    assert.match(sup.status.lastError?.message ?? '', /Connection refused/);
    assert.match(logText, /capture failed/);

    // Now scan everything the camera wrote.
    const audit = [m.f.paths.auditLog, `${m.f.paths.auditLog}.1`]
      .filter((p) => existsSync(p))
      .map((p) => readFileSync(p, 'utf8'))
      .join('\n');
    assert.match(audit, /relay_not_allowed/, 'the refusal was audited');
    const queued = readFileSync(join(qdir, 'queue.jsonl'), 'utf8');
    assert.match(queued, /relay_not_allowed/, 'the refusal was queued as an event');
    const surfaces = {
      log: logText,
      audit,
      queued,
      lastError: JSON.stringify(sup.status.lastError),
      active: JSON.stringify(push.active()),
    };
    for (const [where, text] of Object.entries(surfaces))
      for (const [what, secret] of Object.entries({ ...SECRETS, captureKey }))
        assert.ok(!text.includes(secret), `${what} leaked into ${where}`);
  },
);

test('createLogger redacts message, fields, nested errors and child bindings', () => {
  let out = '';
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    }),
  });
  const url = `rtmp://h:1935/live/${SECRETS.path}?key=${SECRETS.query}`;
  log
    .child({ relay: url })
    .error({ err: new Error(`${url}: Connection refused`), detail: { url } }, `failed on ${url}`);
  const line = JSON.parse(out.trim()) as { err: { type: string; message: string }; msg: string };
  assert.equal(line.err.type, 'Error');
  assert.match(line.err.message, /Connection refused/);
  assert.match(line.msg, /^failed on rtmp:\/\/h:1935\/live\/\[redacted\]/);
  for (const s of Object.values(SECRETS)) assert.ok(!out.includes(s), `${s} in ${out}`);
});

test('presigned upload URLs: X-Amz-* values and any query never survive, in or out of a URL', () => {
  const sig = 'f00dfeedbeefcafe0123456789abcdef0123456789abcdef0123456789abcdef';
  const cred = 'AKIAPLANTED7%2F20261202%2Fus-east-1%2Fs3%2Faws4_request';
  const url = `https://store.example:9000/lenscap-events/CAM-1/x.sealed?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${cred}&X-Amz-Signature=${sig}&x-id=PutObject`;
  const texts = [
    url,
    `PUT ${url}: ECONNRESET`,
    // a bare path with its query (an access log line), and signing parameters alone (an S3 error body)
    `PUT /lenscap-events/CAM-1/x.sealed?X-Amz-Signature=${sig}&X-Amz-Credential=${cred} 403`,
    `<StringToSign>X-Amz-Signature=${sig}</StringToSign> Signature=${sig} AWSAccessKeyId=AKIAPLANTED7`,
  ];
  for (const t of texts) {
    const r = redactText(t);
    assert.doesNotMatch(r, new RegExp(sig), r);
    assert.doesNotMatch(r, /AKIAPLANTED7/, r);
  }
  assert.equal(redactUrl(url), 'https://store.example:9000/lenscap-events/CAM-1/x.sealed?[redacted]');
});
