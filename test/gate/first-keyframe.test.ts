/**
 * The gate's first-keyframe rule on the chunks a hub tap hands over: the file header, metadata and
 * sequence headers are held, inter frames before a keyframe are dropped, a keyframe (legacy AVC or
 * enhanced RTMP) opens the session; garbage and truncated chunks never throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyChunk } from '../../agent/gate/first-keyframe.ts';

function tag(type: number, body: number[]): Buffer {
  const b = Buffer.alloc(11 + body.length + 4);
  b[0] = type;
  b.writeUIntBE(body.length, 1, 3);
  Buffer.from(body).copy(b, 11);
  b.writeUInt32BE(11 + body.length, 11 + body.length);
  return b;
}
const header = Buffer.from('464c5601010000000900000000', 'hex');

test('header, metadata and sequence headers are other; AVC keyframe and inter frame are told apart', () => {
  assert.equal(classifyChunk(header), 'other');
  assert.equal(classifyChunk(tag(18, [2, 0, 10])), 'other');
  assert.equal(classifyChunk(tag(9, [0x17, 0x00, 0, 0, 0, 1])), 'other', 'AVC sequence header');
  assert.equal(classifyChunk(tag(9, [0x17, 0x01, 0, 0, 0])), 'keyframe');
  assert.equal(classifyChunk(tag(9, [0x27, 0x01, 0, 0, 0])), 'frame');
  assert.equal(classifyChunk(tag(9, [0x57, 0x00])), 'other', 'video info/command frame');
  // Enhanced RTMP (HEVC): ex-header bit, frame type in bits 4-6, packet type low nibble.
  assert.equal(classifyChunk(tag(9, [0x90, 0x68, 0x76, 0x63, 0x31])), 'other', 'sequence start');
  assert.equal(classifyChunk(tag(9, [0x91, 0x68, 0x76, 0x63, 0x31])), 'keyframe');
  assert.equal(classifyChunk(tag(9, [0xa3, 0x68, 0x76, 0x63, 0x31])), 'frame');
});

test('several tags in one chunk: any keyframe wins; header then tags in one chunk', () => {
  const inter = tag(9, [0x27, 0x01, 0, 0, 0]);
  const key = tag(9, [0x17, 0x01, 0, 0, 0]);
  assert.equal(classifyChunk(Buffer.concat([inter, key])), 'keyframe');
  assert.equal(classifyChunk(Buffer.concat([header, tag(18, [2]), inter])), 'frame');
  assert.equal(classifyChunk(Buffer.concat([header, key])), 'keyframe');
});

test('garbage and truncated chunks are other, never a throw', () => {
  assert.equal(classifyChunk(Buffer.alloc(0)), 'other');
  assert.equal(classifyChunk(Buffer.from('FLV')), 'other');
  assert.equal(classifyChunk(Buffer.from([9, 0xff, 0xff, 0xff])), 'other');
  assert.equal(classifyChunk(tag(9, [0x17, 0x01]).subarray(0, 12)), 'other', 'body cut short');
  assert.equal(classifyChunk(Buffer.from('464c5601010000ffff', 'hex')), 'other', 'absurd header length');
  for (let i = 0; i < 200; i++) {
    const junk = Buffer.from(Array.from({ length: (i % 40) + 1 }, (_, j) => (i * 31 + j * 17) & 0xff));
    classifyChunk(junk);
  }
});
