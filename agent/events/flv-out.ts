/**
 * FLV bytes for the short-lived ffmpeg runs of the events room (snapshot, clip): a video-only
 * file header, then the sequence header and tags with timestamps rebased to the first tag, so
 * a clip starts at 0 whatever the hub's media time was.
 * Must never reorder tags or emit a tag before the sequence header.
 */
import { encodeTag } from '../sealing/flv-tags.ts';
import { tagTimeBytes, type RingTag } from './ring.ts';

/** 'FLV', version 1, flags 0x01 (video only), header length 9, PreviousTagSize0 = 0. */
export const FLV_VIDEO_HEADER = Buffer.from([0x46, 0x4c, 0x56, 0x01, 0x01, 0, 0, 0, 9, 0, 0, 0, 0]);

export class FlvWriter {
  private base: number | undefined;

  /** Rebases every tag to the first tag written after the sequence header. */
  tag(t: RingTag): Buffer {
    this.base ??= t.tsMs;
    return encodeTag(t.type, tagTimeBytes(Math.max(0, t.tsMs - this.base)), t.body);
  }

  start(seq: RingTag): Buffer {
    return Buffer.concat([FLV_VIDEO_HEADER, encodeTag(seq.type, tagTimeBytes(0), seq.body)]);
  }
}
