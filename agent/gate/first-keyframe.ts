/**
 * Where a viewer's media may begin: the gate holds a session's response head back until the hub
 * hands its tap a video keyframe, so a viewer whose capture never starts gets a coded answer
 * instead of a 200 head and silence. Pure: looks at one chunk the hub wrote (the 13-byte file
 * header, or whole tags; one tag per chunk from node-media-server, several are walked too).
 * Must never read past a chunk's end, nor throw on garbage (garbage is `other`).
 */

/**
 * `keyframe`: carries a coded video keyframe (media can start here). `frame`: a coded inter frame
 * and no keyframe (useless before the first keyframe). `other`: the file header, metadata,
 * sequence headers, anything else (kept for the player).
 */
export type ChunkKind = 'keyframe' | 'frame' | 'other';

export function classifyChunk(chunk: Buffer): ChunkKind {
  let off = 0;
  if (chunk.length >= 9 && chunk.toString('latin1', 0, 3) === 'FLV') {
    const len = chunk.readUInt32BE(5);
    off = len + 4;
  }
  let kind: ChunkKind = 'other';
  while (off + 11 <= chunk.length) {
    const type = chunk[off]! & 0x1f;
    const size = chunk.readUIntBE(off + 1, 3);
    const body = off + 11;
    if (type === 9 && size >= 2 && body + 2 <= chunk.length) {
      const v = codedVideo(chunk[body]!, chunk[body + 1]!);
      if (v === 'keyframe') return 'keyframe';
      if (v === 'frame') kind = 'frame';
    }
    off = body + size + 4;
  }
  return kind;
}

/** A video tag's first two body bytes: a coded keyframe, a coded inter frame, or neither. */
function codedVideo(b0: number, b1: number): ChunkKind {
  if (b0 & 0x80) {
    // Enhanced RTMP (HEVC, AV1 …): frame type in bits 4–6, packet type in the low nibble
    // (1 = coded frames, 3 = coded frames without composition time).
    const packet = b0 & 0x0f;
    if (packet !== 1 && packet !== 3) return 'other';
    return ((b0 >> 4) & 0x07) === 1 ? 'keyframe' : 'frame';
  }
  // Legacy FLV: frame type in the high nibble; AVC (codec 7) has a packet type, 1 = NALUs.
  if ((b0 & 0x0f) === 7 && b1 !== 1) return 'other';
  const frameType = b0 >> 4;
  if (frameType === 1) return 'keyframe';
  return frameType === 5 ? 'other' : 'frame';
}
