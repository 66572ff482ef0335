/**
 * One sealed FLV video tag body ("layout B", docs/streaming.md): the 5-byte AVC video header
 * stays in the clear (frame type, packet type, composition time), and the whole plaintext NALU
 * payload becomes ONE valid-looking H.264 NAL unit — length, a clear NAL header byte (0x65 IDR
 * for keyframes, 0x41 otherwise), a 2-byte slice-header stub — followed by the sealed blob:
 *   version u8 | flags u8 (bit 0: key envelope follows) | keyId u8 | counter u64 |
 *   [envLen u16 | envelope] | AES-GCM ciphertext | tag[16]
 * ffmpeg's H.264 parser (in our push path and in relays that transcode-copy) accepts that NAL, so
 * ffmpeg forwards it byte for byte; a plain decoder sees an undecodable slice (flat gray).
 * AEAD: nonce = 0^4 | counter; AAD = label | sessionId | keyId | counter | video byte 0 | NAL
 * header. Timestamps are NOT bound: relays and ffmpeg rebase them.
 * Pure functions on bytes. Must never emit a frame whose ciphertext does not cover the whole
 * plaintext payload.
 */
import { FRAME_LABEL, SEAL_VERSION } from './suite.ts';
import { SealFormatError } from './envelope.ts';

export const NAL_KEY = 0x65;
export const NAL_INTER = 0x41;
/** Slice-header stubs: first_mb 0, slice_type I (key) / P (inter), pps 0 — enough for ffmpeg's parser. */
export const STUB_KEY = [0x88, 0x80] as const;
export const STUB_INTER = [0x9a, 0x00] as const;
export const FLAG_ENVELOPE = 1;
export const GCM_TAG_BYTES = 16;
/** Bytes a sealed non-key frame adds: NAL length 4 + header 1 + stub 2 + blob header 11 + tag 16. */
export const FRAME_OVERHEAD = 4 + 1 + 2 + 11 + GCM_TAG_BYTES;

export interface SealedFrameParts {
  /** Byte 0 of the video tag (frame type << 4 | codec id 7). */
  videoByte: number;
  /** Bytes 2..4: composition time offset. */
  cts: Uint8Array;
  key: boolean;
  nalHeader: number;
  keyId: number;
  counter: bigint;
  envelope?: Uint8Array;
  /** Ciphertext followed by the GCM tag. */
  sealed: Uint8Array;
}

export function nonceFor(counter: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, counter);
  return n;
}

export function aadFor(
  sessionId: Uint8Array,
  keyId: number,
  counter: bigint,
  videoByte: number,
  nalHeader: number,
): Uint8Array {
  const a = new Uint8Array(FRAME_LABEL.length + 16 + 1 + 8 + 2);
  a.set(FRAME_LABEL, 0);
  let o = FRAME_LABEL.length;
  a.set(sessionId, o);
  o += 16;
  a[o++] = keyId;
  new DataView(a.buffer).setBigUint64(o, counter);
  o += 8;
  a[o++] = videoByte;
  a[o] = nalHeader;
  return a;
}

/** Is this video tag body a coded frame we seal (AVC, packet type 1)? Sequence headers stay clear. */
export function isSealableVideo(body: Uint8Array): boolean {
  return body.length >= 5 && (body[0]! & 0x0f) === 7 && body[1] === 1;
}

export function isKeyVideo(body: Uint8Array): boolean {
  return body[0]! >> 4 === 1;
}

/** Builds the sealed tag body from its parts (`sealed` already produced by the AEAD). */
export function buildSealedBody(p: SealedFrameParts): Uint8Array {
  const envLen = p.envelope ? 2 + p.envelope.length : 0;
  const nalLen = 1 + 2 + 11 + envLen + p.sealed.length;
  const out = new Uint8Array(5 + 4 + nalLen);
  const dv = new DataView(out.buffer);
  out[0] = p.videoByte;
  out[1] = 1;
  out.set(p.cts.subarray(0, 3), 2);
  dv.setUint32(5, nalLen);
  out[9] = p.nalHeader;
  const stub = p.key ? STUB_KEY : STUB_INTER;
  out[10] = stub[0];
  out[11] = stub[1];
  out[12] = SEAL_VERSION;
  out[13] = p.envelope ? FLAG_ENVELOPE : 0;
  out[14] = p.keyId;
  dv.setBigUint64(15, p.counter);
  let o = 23;
  if (p.envelope) {
    if (p.envelope.length > 0xffff) throw new SealFormatError('ERR_SEAL_ENVELOPE', 'envelope too large');
    dv.setUint16(o, p.envelope.length);
    out.set(p.envelope, o + 2);
    o += envLen;
  }
  out.set(p.sealed, o);
  return out;
}

/** Parses a sealed tag body. Throws SealFormatError (a coded reason) on anything malformed. */
export function parseSealedBody(body: Uint8Array): SealedFrameParts {
  if (!isSealableVideo(body)) throw new SealFormatError('ERR_SEAL_NOT_VIDEO', 'not an AVC NALU video tag');
  if (body.length < 5 + 4 + 3 + 11 + GCM_TAG_BYTES)
    throw new SealFormatError('ERR_SEAL_TRUNCATED', 'sealed frame shorter than its fixed fields');
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const nalLen = dv.getUint32(5);
  if (nalLen !== body.length - 9)
    throw new SealFormatError('ERR_SEAL_TRUNCATED', 'NAL length does not match the tag');
  const nalHeader = body[9]!;
  if (nalHeader !== NAL_KEY && nalHeader !== NAL_INTER)
    throw new SealFormatError('ERR_SEAL_NOT_SEALED', 'not a sealed frame (plaintext or foreign NAL)');
  if (body[12] !== SEAL_VERSION) throw new SealFormatError('ERR_SEAL_VERSION', `frame version ${body[12]}`);
  const flags = body[13]!;
  const keyId = body[14]!;
  const counter = dv.getBigUint64(15);
  let o = 23;
  let envelope: Uint8Array | undefined;
  if (flags & FLAG_ENVELOPE) {
    if (body.length < o + 2) throw new SealFormatError('ERR_SEAL_TRUNCATED', 'envelope length missing');
    const n = dv.getUint16(o);
    if (body.length < o + 2 + n + GCM_TAG_BYTES)
      throw new SealFormatError('ERR_SEAL_TRUNCATED', 'envelope truncated');
    envelope = body.subarray(o + 2, o + 2 + n);
    o += 2 + n;
  }
  return {
    videoByte: body[0]!,
    cts: body.subarray(2, 5),
    key: nalHeader === NAL_KEY,
    nalHeader,
    keyId,
    counter,
    ...(envelope ? { envelope } : {}),
    sealed: body.subarray(o),
  };
}

/** The plaintext tag body from the clear header and the opened payload. */
export function plainBody(parts: SealedFrameParts, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = parts.videoByte;
  out[1] = 1;
  out.set(parts.cts, 2);
  out.set(payload, 5);
  return out;
}
