/**
 * RTMP's chunk layer: messages (type, stream id, timestamp, body) split into chunks of the
 * negotiated size on the way out, and chunks of any header format (0-3, extended timestamps)
 * put back together into messages on the way in. The handshake's C0/C1/C2 are here too
 * (the plain handshake that nginx-rtmp and node-media-server accept).
 * Pure byte work, no sockets. Must never emit a chunk larger than the chunk size in force, nor
 * buffer an incoming message beyond MAX_MESSAGE_BYTES.
 */
import { LenscapError } from '../../errors.ts';

export interface RtmpMessage {
  csid: number;
  type: number;
  streamId: number;
  /** Milliseconds, 32 bits. */
  timestamp: number;
  body: Buffer;
}

export const HANDSHAKE_BYTES = 1536;
export const MAX_MESSAGE_BYTES = 8 << 20;
export const MSG = {
  setChunkSize: 1,
  abort: 2,
  ack: 3,
  userControl: 4,
  windowAckSize: 5,
  setPeerBandwidth: 6,
  audio: 8,
  video: 9,
  dataAmf0: 18,
  commandAmf0: 20,
} as const;

/** C0 (version 3) and C1 (time, zero, random): the plain handshake, no digest. */
export function handshakeC0C1(random: Uint8Array): Buffer {
  const b = Buffer.alloc(1 + HANDSHAKE_BYTES);
  b[0] = 3;
  b.set(random.subarray(0, HANDSHAKE_BYTES - 8), 9);
  return b;
}

function basicHeader(fmt: number, csid: number): Buffer {
  if (csid < 2 || csid > 65599) throw new LenscapError('ERR_RTMP_PROTOCOL', `chunk stream id ${csid}`);
  if (csid < 64) return Buffer.from([(fmt << 6) | csid]);
  if (csid < 320) return Buffer.from([fmt << 6, csid - 64]);
  return Buffer.from([(fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8]);
}

/** One message as chunks: a type-0 header, then type-3 continuations. */
export function encodeMessage(m: RtmpMessage, chunkSize: number): Buffer {
  const ts = m.timestamp >>> 0;
  const ext = ts >= 0xffffff;
  const h = Buffer.alloc(11 + (ext ? 4 : 0));
  h.writeUIntBE(ext ? 0xffffff : ts, 0, 3);
  h.writeUIntBE(m.body.length, 3, 3);
  h[6] = m.type;
  h.writeUInt32LE(m.streamId >>> 0, 7); // the one little-endian field in RTMP
  if (ext) h.writeUInt32BE(ts, 11);
  const parts: Buffer[] = [basicHeader(0, m.csid), h];
  const cont = basicHeader(3, m.csid);
  const extBytes = ext ? h.subarray(11) : undefined;
  for (let o = 0; o < m.body.length || o === 0; o += chunkSize) {
    if (o > 0) parts.push(cont, ...(extBytes ? [extBytes] : []));
    parts.push(m.body.subarray(o, Math.min(o + chunkSize, m.body.length)));
    if (m.body.length === 0) break;
  }
  return Buffer.concat(parts);
}

interface ChunkStreamState {
  timestamp: number;
  delta: number;
  length: number;
  type: number;
  streamId: number;
  extended: boolean;
  partial: Buffer[];
  received: number;
}

/** Incoming chunks → whole messages. Set Chunk Size is applied here, before the next chunk. */
export class ChunkReader {
  chunkSize = 128;
  private buf: Buffer = Buffer.alloc(0);
  private readonly streams = new Map<number, ChunkStreamState>();

  constructor(private readonly onMessage: (m: RtmpMessage) => void) {}

  push(data: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    while (this.readChunk());
  }

  private readChunk(): boolean {
    const b = this.buf;
    if (b.length < 1) return false;
    const fmt = b[0]! >> 6;
    let csid = b[0]! & 0x3f;
    let o = 1;
    if (csid === 0) {
      if (b.length < 2) return false;
      csid = 64 + b[1]!;
      o = 2;
    } else if (csid === 1) {
      if (b.length < 3) return false;
      csid = 64 + b[1]! + (b[2]! << 8);
      o = 3;
    }
    const hlen = [11, 7, 3, 0][fmt]!;
    if (b.length < o + hlen) return false;
    let st = this.streams.get(csid);
    if (!st) {
      if (fmt !== 0)
        throw new LenscapError('ERR_RTMP_PROTOCOL', `chunk stream ${csid} starts without a full header`);
      st = {
        timestamp: 0,
        delta: 0,
        length: 0,
        type: 0,
        streamId: 0,
        extended: false,
        partial: [],
        received: 0,
      };
    }
    const starting = st.received === 0;
    let tsField = 0;
    const next = { ...st };
    if (fmt <= 2) {
      tsField = b.readUIntBE(o, 3);
      next.extended = tsField === 0xffffff;
    }
    if (fmt <= 1) {
      next.length = b.readUIntBE(o + 3, 3);
      next.type = b[o + 6]!;
      if (next.length > MAX_MESSAGE_BYTES)
        throw new LenscapError('ERR_RTMP_PROTOCOL', `message of ${next.length} bytes`);
    }
    if (fmt === 0) next.streamId = b.readUInt32LE(o + 7);
    o += hlen;
    if (next.extended) {
      if (b.length < o + 4) return false;
      if (fmt <= 2) tsField = b.readUInt32BE(o);
      o += 4;
    }
    const want = Math.min(this.chunkSize, next.length - next.received);
    if (b.length < o + want) return false;
    if (starting) {
      if (fmt === 0) next.timestamp = tsField;
      else if (fmt === 1 || fmt === 2) {
        next.delta = tsField;
        next.timestamp = (next.timestamp + tsField) >>> 0;
      } else next.timestamp = (next.timestamp + next.delta) >>> 0;
    }
    next.partial = [...st.partial, b.subarray(o, o + want)];
    next.received = st.received + want;
    this.buf = b.subarray(o + want);
    if (next.received >= next.length) {
      const body = Buffer.concat(next.partial);
      next.partial = [];
      next.received = 0;
      this.streams.set(csid, next);
      const m = { csid, type: next.type, streamId: next.streamId, timestamp: next.timestamp, body };
      if (m.type === MSG.setChunkSize && body.length >= 4) {
        const size = body.readUInt32BE(0) & 0x7fffffff;
        if (size < 1 || size > MAX_MESSAGE_BYTES)
          throw new LenscapError('ERR_RTMP_PROTOCOL', `chunk size ${size}`);
        this.chunkSize = size;
      }
      this.onMessage(m);
    } else this.streams.set(csid, next);
    return true;
  }
}
