/**
 * Seals an FLV byte stream tag by tag for push (and for direct viewing with `gate.seal`): coded
 * video frames are sealed (frame.ts), the AVC sequence header (SPS/PPS) and script metadata pass
 * in the clear so relays and players keep their framing, and audio is dropped — capture has none,
 * and an unsealed audio tag must never leave next to sealed video.
 * Must never pass a coded video frame through unsealed.
 */
import type { FrameSealer } from './sealer.ts';
import { encodeTag, FlvTagReader } from './flv-tags.ts';

export interface SealingCounters {
  tagsIn: number;
  sealed: number;
  clear: number;
  dropped: number;
}

/** Returns a write function for FLV chunks; sealed FLV goes to `out`. Throws on a broken stream. */
export function flvSealingWriter(
  sealer: FrameSealer,
  out: (chunk: Buffer) => void,
): { write(chunk: Buffer): void; counters: SealingCounters } {
  const counters: SealingCounters = { tagsIn: 0, sealed: 0, clear: 0, dropped: 0 };
  const reader = new FlvTagReader(
    (header) => {
      const h = Buffer.from(header);
      h[4] = h[4]! & ~0x04; // no audio announced: none is sent
      out(h);
    },
    (tag) => {
      counters.tagsIn++;
      if (tag.type === 9) {
        const body = sealer.sealVideo(tag.body);
        if (body === tag.body) counters.clear++;
        else counters.sealed++;
        out(encodeTag(9, tag.ts, body));
      } else if (tag.type === 18) {
        counters.clear++;
        out(encodeTag(18, tag.ts, tag.body));
      } else counters.dropped++;
    },
  );
  return { write: (chunk) => reader.push(chunk), counters };
}
