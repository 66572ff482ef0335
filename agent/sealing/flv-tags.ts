/**
 * FLV byte stream in, whole tags out (and back): the 9-byte file header (plus its 4-byte
 * PreviousTagSize0) once, then tags as type, timestamp bytes and body, whatever the chunking.
 * Tags are copied, never interpreted: sealing decides per tag what to do.
 * Must never emit a partial tag, nor grow its buffer without bound on garbage input.
 */
import { LenscapError } from '../errors.ts';

export interface FlvTagOut {
  type: number;
  /** Bytes 4..7 of the tag header: timestamp (24 bits) and its extension byte, untouched. */
  ts: Buffer;
  body: Buffer;
}

/** Largest tag we accept (a 1080p keyframe is well under this). */
export const MAX_TAG_BYTES = 8 << 20;

export class FlvTagReader {
  private buf: Buffer = Buffer.alloc(0);
  private headerDone = false;

  constructor(
    private readonly onHeader: (header: Buffer) => void,
    private readonly onTag: (tag: FlvTagOut) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (!this.headerDone) {
      if (this.buf.length < 13) return;
      if (this.buf.toString('latin1', 0, 3) !== 'FLV')
        throw new LenscapError('ERR_FLV_HEADER', 'stream does not start with an FLV header');
      const len = this.buf.readUInt32BE(5);
      if (len < 9 || len > 64) throw new LenscapError('ERR_FLV_HEADER', `FLV header length ${len}`);
      if (this.buf.length < len + 4) return;
      this.onHeader(Buffer.from(this.buf.subarray(0, len + 4)));
      this.buf = this.buf.subarray(len + 4);
      this.headerDone = true;
    }
    while (this.buf.length >= 11) {
      const size = this.buf.readUIntBE(1, 3);
      if (size > MAX_TAG_BYTES) throw new LenscapError('ERR_FLV_TAG', `FLV tag of ${size} bytes`);
      if (this.buf.length < 11 + size + 4) return;
      this.onTag({
        type: this.buf[0]! & 0x1f,
        ts: Buffer.from(this.buf.subarray(4, 8)),
        body: Buffer.from(this.buf.subarray(11, 11 + size)),
      });
      this.buf = this.buf.subarray(11 + size + 4);
    }
  }
}

/**
 * The FLV file header (9 bytes, or 13 with PreviousTagSize0) with its audio flag cleared — the one
 * place this patch is made. node-media-server's header always announces audio while capture is
 * video only (`-an`); players (flv.js/mpegts.js) and ffmpeg's flv demuxer would wait for audio that
 * never comes. Returns a copy; anything that is not an FLV header is returned as it is.
 */
export function videoOnlyHeader(header: Buffer): Buffer {
  if (header.length < 9 || header.toString('latin1', 0, 3) !== 'FLV') return header;
  const h = Buffer.from(header);
  h[4] = h[4]! & ~0x04;
  return h;
}

/** One tag with its trailing PreviousTagSize; stream id 0. */
export function encodeTag(type: number, ts: Uint8Array, body: Uint8Array): Buffer {
  const out = Buffer.alloc(11 + body.length + 4);
  out[0] = type;
  out.writeUIntBE(body.length, 1, 3);
  out.set(ts.subarray(0, 4), 4);
  out.set(body, 11);
  out.writeUInt32BE(11 + body.length, 11 + body.length);
  return out;
}
