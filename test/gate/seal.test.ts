/**
 * `gate.seal`: direct viewing sealed too. A bound viewer with a membership key gets a sealed
 * stream only their key opens; a bound viewer without a key is refused `viewer_key_missing` with
 * zero FLV bytes; with `gate.seal` off (the default) the gate serves as before. Over HTTP-FLV and
 * over the gate's WebSocket path alike: what a wrong key or a plain decoder gets is nothing decodable.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeMediaFixture, type MediaFixture } from '../../harness/media-fixture.ts';
import { createGate, type Gate } from '../../agent/gate/gate.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { FrameOpener } from '../../agent/sealing/opener.ts';
import { isSealableVideo } from '../../agent/sealing/frame.ts';
import { decodeLumaStddev, flvFile, pullHttpFlv, pullWsFlv } from '../../harness/sealed-pull.ts';
import { makeViewer, type TestViewer } from '../../harness/viewer-keys.ts';

let m: MediaFixture;
let gate: Gate;
let alice: TestViewer;
let mallory: TestViewer;
before(async () => {
  m = await makeMediaFixture({ mode: 'always' });
  alice = await makeViewer('alice#1');
  mallory = await makeViewer('mallory#1');
  const { config } = loadConfig(undefined, {});
  gate = createGate({
    serial: 'CAM-0001',
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false, seal: true },
    grants: m.f.gate,
    stream: m.stream,
    privacy: m.privacy,
    clock: m.f.clock,
    logger: silentLogger(),
    viewerKeys: mapViewerKeys({ alice: alice.key }),
  });
  await gate.listen();
});
after(async () => {
  await gate?.close();
  await m?.close();
});

test('gate.seal is off by default', () => {
  assert.equal(loadConfig(undefined, {}).config.gate.seal, false);
});

test('gate.seal: the bound viewer opens every frame, another key none', async () => {
  const pulled = pullHttpFlv(`${gate.url}/live/CAM-0001.flv`, { authorization: `Bearer ${m.f.mint()}` });
  try {
    assert.ok(await pulled.waitFor(20, 15_000), `only ${pulled.video.length} video tags`);
  } finally {
    pulled.close();
  }
  const a = new FrameOpener({ serial: 'CAM-0001', keyPair: alice.keyPair });
  const x = new FrameOpener({ serial: 'CAM-0001', keyPair: mallory.keyPair });
  const coded = pulled.video.filter((b) => isSealableVideo(b));
  assert.ok(coded.length >= 15);
  for (const b of coded) {
    const r = await a.open(b);
    assert.ok(r.ok, !r.ok ? r.code : '');
    assert.equal((await x.open(b)).ok, false);
  }
  assert.equal(x.counters.opened, 0);
});

test('gate.seal: a bound viewer without a membership key is refused with zero FLV bytes', async () => {
  const c = FlvClient.http({
    url: `${gate.url}/live/CAM-0001.flv`,
    headers: { authorization: `Bearer ${m.f.mint({ viewer: 'bob' })}` },
  });
  const r = await c.waitClosed(5000);
  assert.equal(r.status, 403);
  assert.deepEqual(c.json(), { error: 'viewer_key_missing' });
  assert.equal(r.flvBodyBytes, 0);
  assert.equal(r.parser.tags.length, 0);
  assert.ok(m.f.events.events.some((e) => e.type === 'grant_refused' && e.reason === 'viewer_key_missing'));
});

test('gate.seal over WebSocket: the bound viewer opens and decodes every frame; a wrong key or no key gets nothing decodable', async () => {
  const wsUrl = `${String(gate.url).replace(/^http/, 'ws')}/live/CAM-0001.flv`;
  const pulled = pullWsFlv(wsUrl, { authorization: `Bearer ${m.f.mint()}` });
  try {
    assert.ok(await pulled.waitFor(20, 15_000), `only ${pulled.video.length} video tags over WebSocket`);
  } finally {
    pulled.close();
  }
  const a = new FrameOpener({ serial: 'CAM-0001', keyPair: alice.keyPair });
  const x = new FrameOpener({ serial: 'CAM-0001', keyPair: mallory.keyPair });
  const video = pulled.tags.filter((t) => t.type === 9);
  const coded = video.filter((t) => isSealableVideo(t.body));
  assert.ok(coded.length >= 15);
  const opened = [];
  for (const t of video) {
    const r = await a.open(t.body);
    assert.ok(r.ok, !r.ok ? r.code : '');
    if (r.ok) opened.push({ ...t, body: Buffer.from(r.body) });
    if (isSealableVideo(t.body)) assert.equal((await x.open(t.body)).ok, false);
  }
  assert.equal(a.counters.opened, coded.length);
  assert.equal(x.counters.opened, 0);
  assert.equal(x.sealedForMe, false);
  const plain = await decodeLumaStddev(flvFile(opened), m.stream.ffmpegPath);
  const sealed = await decodeLumaStddev(flvFile(video), m.stream.ffmpegPath);
  assert.ok(plain.length >= 10 && plain.every((s) => s > 10), `bound viewer decoded ${plain.length} frames`);
  assert.equal(sealed.filter((s) => s > 4).length, 0, 'the sealed bytes decode to nothing of the picture');
});

test('gate.seal over WebSocket: a bound viewer without a membership key is refused before the upgrade, zero FLV bytes', async () => {
  const c = FlvClient.ws({
    url: `${String(gate.url).replace(/^http/, 'ws')}/live/CAM-0001.flv`,
    headers: { authorization: `Bearer ${m.f.mint({ viewer: 'bob' })}` },
  });
  const r = await c.waitClosed(5000);
  assert.equal(r.status, 403);
  assert.equal(r.flvBodyBytes, 0);
  assert.equal(r.parser.tags.length, 0);
});
