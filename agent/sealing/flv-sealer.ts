/**
 * Seals an FLV byte stream tag by tag for push (and for direct viewing with `gate.seal`): coded
 * video frames are sealed (frame.ts), the AVC sequence header (SPS/PPS) and script metadata pass
 * in the clear so relays and players keep their framing, and audio is dropped — capture has none,
 * and an unsealed audio tag must never leave next to sealed video.
 * Must never pass a coded video frame through unsealed.
 */
import type { FrameSealer } from './sealer.ts';
import { encodeTag, FlvTagReader, videoOnlyHeader, type FlvTagOut } from './flv-tags.ts';

export interface SealingCounters {
  tagsIn: number;
  sealed: number;
  clear: number;
  dropped: number;
}

/**
 * Tag-level sealing: the FLV header is read and dropped, each tag comes out sealed (video),
 * clear (script data) or not at all (audio). Throws on a broken stream.
 */
export function flvSealingTags(
  sealer: FrameSealer,
  onHeader: (header: Buffer) => void,
  onTag: (tag: FlvTagOut) => void,
): { write(chunk: Buffer): void; counters: SealingCounters } {
  const counters: SealingCounters = { tagsIn: 0, sealed: 0, clear: 0, dropped: 0 };
  const reader = new FlvTagReader(onHeader, (tag) => {
    counters.tagsIn++;
    if (tag.type === 9) {
      const body = sealer.sealVideo(tag.body);
      if (body === tag.body) counters.clear++;
      else counters.sealed++;
      onTag({ type: 9, ts: tag.ts, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) });
    } else if (tag.type === 18) {
      counters.clear++;
      onTag(tag);
    } else counters.dropped++;
  });
  return { write: (chunk) => reader.push(chunk), counters };
}

/** Returns a write function for FLV chunks; sealed FLV goes to `out`. Throws on a broken stream. */
export function flvSealingWriter(
  sealer: FrameSealer,
  out: (chunk: Buffer) => void,
): { write(chunk: Buffer): void; counters: SealingCounters } {
  return flvSealingTags(
    sealer,
    (header) => out(videoOnlyHeader(header)),
    (tag) => out(encodeTag(tag.type, tag.ts, tag.body)),
  );
}
