/**
 * The push's RTMP wire code, pure parts: AMF0 values, chunking (any chunk size, extended
 * timestamps, every header format on the way in) and the URL split relays expect. Malformed input
 * gets a coded error, never a crash or an unbounded buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAmf0, encodeAmf0 } from '../../agent/push/rtmp/amf0.ts';
import {
  ChunkReader,
  encodeMessage,
  MAX_MESSAGE_BYTES,
  type RtmpMessage,
} from '../../agent/push/rtmp/chunks.ts';
import { parseRtmpUrl } from '../../agent/push/rtmp/url.ts';
import { LenscapError } from '../../agent/errors.ts';

const coded = (code: string) => (e: unknown) => e instanceof LenscapError && e.code === code;

test('AMF0: commands round-trip; truncated, unknown or hostile input is a coded error', () => {
  const v = ['connect', 1, { app: 'live', n: 2.5, ok: true, nested: { a: null } }, null, undefined, [1, 'x']];
  assert.deepEqual(decodeAmf0(encodeAmf0(...(v as never[]))), v);
  const long = 'k'.repeat(70_000);
  assert.deepEqual(decodeAmf0(encodeAmf0(long)), [long]);
  const buf = encodeAmf0('onStatus', 0, null, { code: 'NetStream.Publish.Start' });
  // Cut anywhere: either fewer whole values or a coded error, never anything else.
  for (let n = 1; n < buf.length; n++) {
    try {
      assert.ok(decodeAmf0(buf.subarray(0, n)).length < 4, `truncated at ${n}`);
    } catch (e) {
      assert.ok(coded('ERR_RTMP_AMF')(e), `truncated at ${n}: ${String(e)}`);
    }
  }
  assert.throws(() => decodeAmf0(Buffer.from([0x11])), coded('ERR_RTMP_AMF'));
  // A strict array claiming 4 billion entries does not allocate them.
  assert.throws(() => decodeAmf0(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff])), coded('ERR_RTMP_AMF'));
  // Deep nesting is bounded.
  assert.throws(() => decodeAmf0(Buffer.alloc(100, 0x0a).fill(0, 1)), coded('ERR_RTMP_AMF'));
  const deep = Buffer.concat([...Array(40)].map(() => Buffer.from([0x03, 0, 1, 0x61])));
  assert.throws(() => decodeAmf0(deep), coded('ERR_RTMP_AMF'));
  // "__proto__" is an own key, not the prototype.
  const [o] = decodeAmf0(
    Buffer.concat([
      Buffer.from([0x03, 0, 9]),
      Buffer.from('__proto__'),
      encodeAmf0({ x: 1 }),
      Buffer.from([0, 0, 9]),
    ]),
  ) as [Record<string, unknown>];
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ['__proto__']);
});

test('chunks: messages of any size survive any chunking and split reads, extended timestamps included', () => {
  const msgs: RtmpMessage[] = [
    { csid: 6, type: 9, streamId: 1, timestamp: 0, body: Buffer.alloc(10_000, 7) },
    { csid: 6, type: 9, streamId: 1, timestamp: 0x1000000, body: Buffer.alloc(9000, 3) },
    { csid: 3, type: 20, streamId: 0, timestamp: 5, body: encodeAmf0('_result', 1, null, {}) },
    { csid: 70, type: 18, streamId: 1, timestamp: 33, body: Buffer.alloc(0) },
    { csid: 400, type: 8, streamId: 1, timestamp: 1, body: Buffer.from('a') },
  ];
  for (const size of [128, 4096]) {
    const wire = Buffer.concat(msgs.map((m) => encodeMessage(m, size)));
    for (const step of [1, 7, 4096, wire.length]) {
      const got: RtmpMessage[] = [];
      const r = new ChunkReader((m) => got.push(m));
      r.chunkSize = size;
      for (let o = 0; o < wire.length; o += step) r.push(wire.subarray(o, o + step));
      assert.deepEqual(
        got.map((m) => [m.csid, m.type, m.streamId, m.timestamp, m.body.toString('hex')]),
        msgs.map((m) => [m.csid, m.type, m.streamId, m.timestamp, m.body.toString('hex')]),
        `size ${size} step ${step}`,
      );
    }
  }
  // Header formats 1-3 (deltas), as relays send them.
  const got: RtmpMessage[] = [];
  const r = new ChunkReader((m) => got.push(m));
  const fmt0 = encodeMessage({ csid: 4, type: 9, streamId: 1, timestamp: 100, body: Buffer.from('ab') }, 128);
  const fmt1 = Buffer.from([0x44, 0, 0, 40, 0, 0, 1, 9, 0x63]);
  const fmt2 = Buffer.from([0x84, 0, 0, 10, 0x64]);
  const fmt3 = Buffer.from([0xc4, 0x65]);
  r.push(Buffer.concat([fmt0, fmt1, fmt2, fmt3]));
  assert.deepEqual(
    got.map((m) => [m.timestamp, m.body.toString()]),
    [
      [100, 'ab'],
      [140, 'c'],
      [150, 'd'],
      [160, 'e'],
    ],
  );
  // Set Chunk Size applies to what follows.
  const set = new ChunkReader(() => undefined);
  set.push(
    encodeMessage({ csid: 2, type: 1, streamId: 0, timestamp: 0, body: Buffer.from([0, 0, 0x10, 0]) }, 128),
  );
  assert.equal(set.chunkSize, 4096);
});

test('chunks: garbage is a coded error, an oversized message is refused before it is buffered', () => {
  assert.throws(
    () => new ChunkReader(() => undefined).push(Buffer.from([0xc5, 1, 2, 3])),
    coded('ERR_RTMP_PROTOCOL'),
  );
  const big = Buffer.from([0x06, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]);
  big.writeUIntBE(MAX_MESSAGE_BYTES + 1, 4, 3);
  assert.throws(() => new ChunkReader(() => undefined).push(big), coded('ERR_RTMP_PROTOCOL'));
  const zero = encodeMessage({ csid: 2, type: 1, streamId: 0, timestamp: 0, body: Buffer.alloc(4) }, 128);
  assert.throws(() => new ChunkReader(() => undefined).push(zero), coded('ERR_RTMP_PROTOCOL'));
});

test('RTMP URLs: app is the first segment, the stream name keeps the rest and the query; tcUrl neither', () => {
  assert.deepEqual(parseRtmpUrl('rtmp://127.0.0.1:1936/live/CAM-0001'), {
    tls: false,
    host: '127.0.0.1',
    port: 1936,
    app: 'live',
    stream: 'CAM-0001',
    tcUrl: 'rtmp://127.0.0.1:1936/live',
  });
  const k = parseRtmpUrl('rtmps://relay.example/app/a/CAM-1?key=s3cret');
  assert.deepEqual([k.tls, k.port, k.app, k.stream], [true, 443, 'app', 'a/CAM-1?key=s3cret']);
  assert.ok(!k.tcUrl.includes('s3cret') && !k.tcUrl.includes('CAM-1'));
  assert.equal(parseRtmpUrl('rtmp://[::1]/live/x').host, '::1');
  for (const bad of ['http://h/live/x', 'rtmp://h/live', 'rtmp://u:p@h/live/x', 'not a url'])
    assert.throws(() => parseRtmpUrl(bad), coded('ERR_RTMP_PROTOCOL'), bad);
});
