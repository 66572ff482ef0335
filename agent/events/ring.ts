/**
 * The pre-roll ring: the most recent GOPs of the camera's H.264 stream as FLV video tags, in
 * memory, so a clip can start `preRollMs` before the motion that triggered it. Bounded twice: by
 * media time (only the GOPs the pre-roll needs: the newest GOP that starts at or before
 * newest − preRoll, and everything after it) and by bytes (oldest whole GOPs dropped first; a
 * single GOP larger than the cap is dropped and the ring waits for the next keyframe). `bytes`
 * is reported in the events status and telemetry.
 * Must never hold more than `maxBytes` of media, hand out a clip that does not start on a
 * keyframe, nor keep anything after `clear()` (privacy).
 */

export interface RingTag {
  /** FLV tag type (9 = video, 18 = script). */
  type: number;
  /** Media time in ms (24-bit timestamp + extension byte). */
  tsMs: number;
  body: Buffer;
  /** Clock time the tag arrived (injected clock). */
  at: number;
}

interface Gop {
  tags: RingTag[];
  bytes: number;
}

/** The FLV tag overhead counted per tag (11-byte header + 4-byte PreviousTagSize). */
const TAG_OVERHEAD = 15;

export function isVideoKeyframe(t: { type: number; body: Buffer }): boolean {
  return t.type === 9 && t.body.length >= 2 && t.body[0]! >> 4 === 1 && t.body[1] === 1;
}

export function isAvcSequenceHeader(t: { type: number; body: Buffer }): boolean {
  return t.type === 9 && t.body.length >= 2 && (t.body[0]! & 0x0f) === 7 && t.body[1] === 0;
}

/** ms from an FLV tag's timestamp bytes (bytes 4..7 of the tag header). */
export function tagTimeMs(ts: Uint8Array): number {
  return ((ts[3]! << 24) >>> 0) + (ts[0]! << 16) + (ts[1]! << 8) + ts[2]!;
}

/** The 4 timestamp bytes for ms (wraps at 2^32 like FLV itself). */
export function tagTimeBytes(ms: number): Buffer {
  const v = Math.max(0, Math.floor(ms)) >>> 0;
  return Buffer.from([(v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff, (v >>> 24) & 0xff]);
}

export class GopRing {
  private gops: Gop[] = [];
  private total = 0;
  /** The last AVC sequence header: every clip and snapshot starts with it. */
  sequenceHeader: RingTag | undefined;
  /** GOPs dropped because of the byte cap (counted for the status). */
  droppedForBytes = 0;
  private waitingForKey = true;

  constructor(private readonly o: { preRollMs: number; maxBytes: number }) {}

  get bytes(): number {
    return this.total;
  }

  get gopCount(): number {
    return this.gops.length;
  }

  /** Media time covered, first tag to last (0 when empty). */
  get spanMs(): number {
    const first = this.gops[0]?.tags[0];
    const lastGop = this.gops[this.gops.length - 1];
    const last = lastGop?.tags[lastGop.tags.length - 1];
    return first && last ? last.tsMs - first.tsMs : 0;
  }

  push(tag: RingTag): void {
    if (tag.type !== 9) return;
    if (isAvcSequenceHeader(tag)) {
      this.sequenceHeader = tag;
      return;
    }
    const size = tag.body.length + TAG_OVERHEAD;
    if (isVideoKeyframe(tag)) {
      this.waitingForKey = false;
      this.gops.push({ tags: [], bytes: 0 });
    } else if (this.waitingForKey) return;
    const gop = this.gops[this.gops.length - 1]!;
    gop.tags.push(tag);
    gop.bytes += size;
    this.total += size;
    this.trim(tag.tsMs);
  }

  private trim(newestMs: number): void {
    while (this.gops.length > 1 && this.gops[1]!.tags[0]!.tsMs <= newestMs - this.o.preRollMs)
      this.dropOldest();
    while (this.total > this.o.maxBytes && this.gops.length > 1) {
      this.dropOldest();
      this.droppedForBytes++;
    }
    if (this.total > this.o.maxBytes) {
      // One GOP alone is over the cap: drop it and start again at the next keyframe.
      this.dropOldest();
      this.droppedForBytes++;
      this.waitingForKey = true;
    }
  }

  private dropOldest(): void {
    const g = this.gops.shift();
    if (g) this.total -= g.bytes;
  }

  /** The pre-roll: every tag held, oldest first, starting on a keyframe (empty before the first one). */
  preRoll(): RingTag[] {
    return this.gops.flatMap((g) => g.tags);
  }

  /** The GOP in progress (keyframe first): what a snapshot of "now" decodes. */
  currentGop(): RingTag[] {
    return [...(this.gops[this.gops.length - 1]?.tags ?? [])];
  }

  /** Discards everything (privacy on, events off). */
  clear(): void {
    this.gops = [];
    this.total = 0;
    this.sequenceHeader = undefined;
    this.waitingForKey = true;
  }
}
