/**
 * The one FLV header patch (`videoOnlyHeader`): the audio flag is cleared on a copy, the video flag
 * and the rest stay, and anything that is not an FLV header passes untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { videoOnlyHeader } from '../../agent/sealing/flv-tags.ts';

test('clears the audio flag on a copy, keeps video; non-headers pass through', () => {
  const nms = Buffer.from('464c5601050000000900000000', 'hex');
  const out = videoOnlyHeader(nms);
  assert.equal(out.toString('hex'), '464c5601010000000900000000');
  assert.equal(nms[4], 0x05, 'the input is not modified');
  assert.equal(videoOnlyHeader(out).toString('hex'), out.toString('hex'), 'idempotent');
  const tag = Buffer.from([9, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(videoOnlyHeader(tag), tag);
  assert.equal(videoOnlyHeader(Buffer.from('FLV')).length, 3);
});
