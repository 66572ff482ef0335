/**
 * The URL exchange on its own: the check every URL passes, and the answers the camera refuses
 * (unsolicited, another artifact, garbage, a closed refusal code) — each coded, none reaching a PUT.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { ManualClock, systemClock } from '../../agent/clock.ts';
import { CommandRegistry, createCommandDispatcher } from '../../agent/cloud/commands.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { silentLogger } from '../../agent/log.ts';
import {
  checkUploadUrl,
  createUploadUrlClient,
  type UploadUrlRequest,
} from '../../agent/uploads/upload-url.ts';
import type { SealedArtifact } from '../../agent/events/artifact.ts';

const code = (c: string) => (err: unknown) => isLenscapError(err) && err.code === c;

test('checkUploadUrl: https on exactly the configured host, no userinfo', () => {
  assert.equal(
    checkUploadUrl('https://s3.example.com/b/k?X-Amz-Signature=1', 's3.example.com').host,
    's3.example.com',
  );
  assert.equal(checkUploadUrl('https://s3.example.com:443/b/k', 's3.example.com').pathname, '/b/k');
  assert.ok(checkUploadUrl('https://127.0.0.1:9000/b/k', '127.0.0.1:9000'));
  assert.ok(checkUploadUrl('https://S3.Example.com/b', 's3.example.com:443'));
  assert.throws(
    () => checkUploadUrl('http://s3.example.com/b', 's3.example.com'),
    code('ERR_UPLOAD_URL_SCHEME'),
  );
  assert.throws(
    () => checkUploadUrl('https://s3.example.com.evil.io/b', 's3.example.com'),
    code('ERR_UPLOAD_URL_HOST'),
  );
  assert.throws(
    () => checkUploadUrl('https://s3.example.com:8443/b', 's3.example.com'),
    code('ERR_UPLOAD_URL_HOST'),
  );
  assert.throws(
    () => checkUploadUrl('https://127.0.0.1:9001/b', '127.0.0.1:9000'),
    code('ERR_UPLOAD_URL_HOST'),
  );
  assert.throws(
    () => checkUploadUrl('https://a:b@s3.example.com/b', 's3.example.com'),
    code('ERR_UPLOAD_URL_INVALID'),
  );
  assert.throws(() => checkUploadUrl('not a url', 's3.example.com'), code('ERR_UPLOAD_URL_INVALID'));
  assert.throws(
    () => checkUploadUrl('https://s3.example.com/b', undefined),
    code('ERR_UPLOAD_NOT_CONFIGURED'),
  );
});

const art = (id: string) =>
  ({ id, kind: 'clip', size: 10, sha256: 'ab'.repeat(32), contentType: 'video/mp4' }) as SealedArtifact;

function rig() {
  const sent: UploadUrlRequest[] = [];
  const client = createUploadUrlClient({
    publish: async (_op, p) => void sent.push(p),
    timers: systemClock,
    timeoutMs: 300,
    logger: silentLogger(),
  });
  const registry = new CommandRegistry();
  client.register(registry);
  const dispatcher = createCommandDispatcher({
    registry,
    serial: 'CAM-1',
    maxBytes: 65536,
    logger: silentLogger(),
    events: new MemoryEventSink(),
    clock: new ManualClock(0),
  });
  let n = 0;
  const answer = (body: Record<string, unknown>) =>
    dispatcher.dispatch('upload.url', Buffer.from(JSON.stringify({ id: `c${++n}`, ...body })));
  return { client, sent, answer };
}

test('an answer for the pending request resolves it; stale, foreign and garbage answers are refused', async () => {
  const r = rig();
  const signal = new AbortController().signal;
  const p = r.client.request(art('CAM-1-e1-clip'), signal);
  await new Promise((res) => setImmediate(res));
  const req = r.sent[0]!;
  assert.deepEqual(Object.keys(req).sort(), ['artifactId', 'contentType', 'id', 'kind', 'sha256', 'size']);
  const ok = await r.answer({
    requestId: req.id,
    artifactId: 'CAM-1-e1-clip',
    url: 'https://s/b/k',
    key: 'CAM-1/k',
    expiresAt: 5,
  });
  assert.equal(ok?.status, 'ok');
  assert.deepEqual(await p, { url: 'https://s/b/k', key: 'CAM-1/k', expiresAt: 5 });

  const stale = await r.answer({
    requestId: req.id,
    artifactId: 'CAM-1-e1-clip',
    url: 'https://s/b/k',
    key: 'k',
    expiresAt: 5,
  });
  assert.equal(stale?.error?.code, 'ERR_UPLOAD_URL_INVALID', 'nothing pending under that request id');

  const p2 = r.client.request(art('CAM-1-e2-clip'), signal);
  await new Promise((res) => setImmediate(res));
  const other = await r.answer({
    requestId: r.sent[1]!.id,
    artifactId: 'CAM-1-e9-clip',
    url: 'https://s/x',
    key: 'k',
    expiresAt: 5,
  });
  assert.equal(other?.error?.code, 'ERR_UPLOAD_URL_INVALID');
  await assert.rejects(p2, code('ERR_UPLOAD_URL_INVALID'));

  const p3 = r.client.request(art('CAM-1-e3-clip'), signal);
  await new Promise((res) => setImmediate(res));
  await r.answer({ requestId: r.sent[2]!.id, artifactId: 'CAM-1-e3-clip', url: { href: 'x' }, key: 7 });
  await assert.rejects(p3, code('ERR_UPLOAD_URL_INVALID'));

  const p4 = r.client.request(art('CAM-1-e4-clip'), signal);
  await new Promise((res) => setImmediate(res));
  await r.answer({
    requestId: r.sent[3]!.id,
    artifactId: 'CAM-1-e4-clip',
    error: { code: 'wrong_serial', message: 'no' },
  });
  await assert.rejects(p4, code('ERR_UPLOAD_URL_REFUSED'));

  const p5 = r.client.request(art('CAM-1-e5-clip'), signal);
  await new Promise((res) => setImmediate(res));
  await r.answer({
    requestId: r.sent[4]!.id,
    artifactId: 'CAM-1-e5-clip',
    error: { code: 'made_up', message: 'x' },
  });
  await assert.rejects(
    p5,
    code('ERR_UPLOAD_URL_INVALID'),
    'a refusal code outside the closed set is garbage',
  );

  await assert.rejects(r.client.request(art('CAM-1-e6-clip'), signal), code('ERR_UPLOAD_URL_TIMEOUT'));
  assert.equal(r.client.pending(), 0);
});
