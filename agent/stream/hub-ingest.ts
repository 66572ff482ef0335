/**
 * The capture ffmpeg's stdout into the hub, in process: a Writable that feeds node-media-server's
 * own FLV parser (src/protocol/flv.js, the one its FlvSession uses for an FLV publish) and hands
 * each packet on. No socket, no RTMP round trips: the first keyframe reaches the hub as soon as
 * ffmpeg writes it (issue 18, cold start).
 * Bad bytes (not an FLV stream, a tag that does not add up, a tag larger than MAX_TAG_BYTES, a
 * packet NMS cannot take) are one coded failure, ERR_HUB_INGEST, reported once; every byte after
 * it is dropped, so the caller stops that ffmpeg run and nothing corrupt reaches a viewer.
 * Memory: the parser holds at most one tag (its buffer is capped at MAX_TAG_BYTES).
 * Must never throw out of write(), nor pass an error to the stream (fluent-ffmpeg would SIGKILL
 * ffmpeg at once and report the run gone before it is): failures go to `onFailure` only.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { MAX_TAG_BYTES } from '../sealing/flv-tags.ts';

const require = createRequire(import.meta.url);

/** The slice of NMS's Flv parser used here (node-media-server 4.4.3, src/protocol/flv.js). */
interface NmsFlvParser {
  parserTagCapacity: number;
  parserTagData: Buffer;
  onPacketCallback: (packet: NmsPacket) => void;
  parserData(buffer: Buffer): string | null;
  parserTagAlloc(size: number): void;
}
/** NMS's AVPacket: what BroadcastServer#broadcastMessage takes. */
export interface NmsPacket {
  codec_type: number;
  flags: number;
  dts: number;
  pts: number;
  size: number;
  data: Buffer;
}

export interface IngestFailure {
  code: 'ERR_HUB_INGEST';
  message: string;
}

export interface FlvIngestOptions {
  onPacket(packet: NmsPacket): void;
  /** Called at most once; nothing more is parsed after it. */
  onFailure(f: IngestFailure): void;
  /** ffmpeg's stdout ended (the run is over). */
  onEnd(): void;
  maxTagBytes?: number;
}

const FLV_SIGNATURE = Buffer.from('FLV', 'latin1');

export function createFlvIngest(opts: FlvIngestOptions): Writable {
  const Flv = require('node-media-server/src/protocol/flv.js') as new () => NmsFlvParser;
  const max = opts.maxTagBytes ?? MAX_TAG_BYTES;
  const parser = new Flv();
  // NMS grows its tag buffer to twice any announced size (up to 32 MiB for a 24-bit size): a
  // garbage size must be refused, not allocated.
  parser.parserTagAlloc = (size: number) => {
    if (size > max) throw new Error(`FLV tag of ${size} bytes (largest accepted ${max})`);
    if (parser.parserTagCapacity < size) {
      const capacity = Math.min(size * 2, max);
      const grown = Buffer.alloc(capacity);
      parser.parserTagData.copy(grown);
      parser.parserTagData = grown;
      parser.parserTagCapacity = capacity;
    }
  };
  parser.onPacketCallback = (packet) => opts.onPacket(packet);
  let signatureSeen = 0;
  let failed = false;
  let bytes = 0;
  const fail = (message: string) => {
    failed = true;
    opts.onFailure({ code: 'ERR_HUB_INGEST', message: `capture stream, chunk at byte ${bytes}: ${message}` });
  };
  return new Writable({
    // fluent-ffmpeg treats the output's 'close' as "kill ffmpeg"; the run's end is its process exit.
    autoDestroy: false,
    emitClose: false,
    write(chunk: Buffer, _enc, cb) {
      if (failed) return cb();
      // NMS's parser skips the 13-byte file header unread: check the signature ourselves.
      // (The signature is the stream's first bytes: chunk offset i is stream offset signatureSeen.)
      for (let i = 0; signatureSeen < FLV_SIGNATURE.length && i < chunk.length; i++, signatureSeen++) {
        if (chunk[i] !== FLV_SIGNATURE[signatureSeen]) {
          fail('not an FLV stream (bad file signature)');
          return cb();
        }
      }
      let err: string | null;
      try {
        err = parser.parserData(chunk);
      } catch (e) {
        err = (e as Error).message;
      }
      if (err) fail(err);
      else bytes += chunk.length;
      cb();
    },
    final(cb) {
      opts.onEnd();
      cb();
    },
  });
}
