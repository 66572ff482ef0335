/**
 * The in-band key envelope: a session's content key wrapped with HPKE to one viewer's public key,
 * repeated at every keyframe so a late joiner (a relay starts it at a keyframe) can open the
 * stream. Layout (big-endian):
 *   version u8 | kem u8 | kidLen u8 | kid | sessionId[16] | keyId u8 | issuedAtMs u64 |
 *   encLen u16 | enc | wrappedLen u16 | wrapped
 * The HPKE AAD is every byte before `encLen` plus the camera's serial, so the kid, session,
 * key generation, issue time and camera are all bound to the wrapped key.
 * Runs on WebCrypto only (Node 20 and the browser Worker share it).
 * Must never wrap to a key that did not come from the caller's viewer-key source, nor return a
 * content key whose envelope failed to open.
 */
import { KEM_IDS, SEAL_VERSION, HPKE_INFO, kemById, kemOfJwk, suiteFor, type KemName } from './suite.ts';

export interface EnvelopeHeader {
  kem: KemName;
  kid: string;
  sessionId: Uint8Array;
  keyId: number;
  issuedAtMs: number;
}

export interface ParsedEnvelope extends EnvelopeHeader {
  /** The bytes the HPKE AAD covers (without the serial). */
  headerBytes: Uint8Array;
  enc: Uint8Array;
  wrapped: Uint8Array;
}

export class SealFormatError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SealFormatError';
  }
}

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function headerBytes(h: EnvelopeHeader): Uint8Array {
  const kid = te.encode(h.kid);
  if (kid.length === 0 || kid.length > 255)
    throw new SealFormatError('ERR_SEAL_KID', 'kid must be 1..255 bytes');
  if (h.sessionId.length !== 16) throw new SealFormatError('ERR_SEAL_SESSION', 'session id must be 16 bytes');
  if (!Number.isInteger(h.keyId) || h.keyId < 0 || h.keyId > 255)
    throw new SealFormatError('ERR_SEAL_KEY_ID', 'key id must be 0..255');
  const out = new Uint8Array(3 + kid.length + 16 + 1 + 8);
  const dv = new DataView(out.buffer);
  out[0] = SEAL_VERSION;
  out[1] = KEM_IDS[h.kem];
  out[2] = kid.length;
  out.set(kid, 3);
  out.set(h.sessionId, 3 + kid.length);
  out[3 + kid.length + 16] = h.keyId;
  dv.setBigUint64(3 + kid.length + 17, BigInt(Math.max(0, Math.floor(h.issuedAtMs))));
  return out;
}

function aadFor(header: Uint8Array, serial: string): Uint8Array {
  return concat(header, te.encode(serial));
}

/** Wraps `contentKey` (raw AES key bytes) to the viewer's public JWK. */
export async function wrapContentKey(p: {
  serial: string;
  kid: string;
  publicKey: JsonWebKey;
  sessionId: Uint8Array;
  keyId: number;
  issuedAtMs: number;
  contentKey: Uint8Array;
}): Promise<Uint8Array> {
  const kem = kemOfJwk(p.publicKey);
  if (!kem) throw new SealFormatError('ERR_SEAL_VIEWER_KEY', 'viewer key is neither X25519 nor P-256');
  if ('d' in p.publicKey)
    throw new SealFormatError('ERR_SEAL_VIEWER_KEY', 'viewer key carries a private member');
  const suite = await suiteFor(kem);
  const recipientPublicKey = await suite.kem.importKey('jwk', p.publicKey, true);
  const header = headerBytes({
    kem,
    kid: p.kid,
    sessionId: p.sessionId,
    keyId: p.keyId,
    issuedAtMs: p.issuedAtMs,
  });
  const { ct: ciphertext, enc } = await suite.seal(
    { recipientPublicKey, info: HPKE_INFO },
    p.contentKey,
    aadFor(header, p.serial),
  );
  const e = new Uint8Array(enc);
  const w = new Uint8Array(ciphertext);
  const lens = new Uint8Array(4);
  new DataView(lens.buffer).setUint16(0, e.length);
  new DataView(lens.buffer).setUint16(2, w.length);
  return concat(header, lens.subarray(0, 2), e, lens.subarray(2, 4), w);
}

/** Parses an envelope's structure (no crypto). Throws SealFormatError naming what is wrong. */
export function parseEnvelope(b: Uint8Array): ParsedEnvelope {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const need = (n: number, what: string) => {
    if (b.length < n) throw new SealFormatError('ERR_SEAL_ENVELOPE', `envelope truncated at ${what}`);
  };
  need(3, 'header');
  if (b[0] !== SEAL_VERSION) throw new SealFormatError('ERR_SEAL_VERSION', `envelope version ${b[0]}`);
  const kem = kemById(b[1]!);
  if (!kem) throw new SealFormatError('ERR_SEAL_ENVELOPE', `unknown KEM ${b[1]}`);
  const kidLen = b[2]!;
  const h = 3 + kidLen + 16 + 1 + 8;
  need(h + 2, 'kid/session');
  let kid: string;
  try {
    kid = td.decode(b.subarray(3, 3 + kidLen));
  } catch {
    throw new SealFormatError('ERR_SEAL_ENVELOPE', 'kid is not UTF-8');
  }
  const sessionId = b.slice(3 + kidLen, 3 + kidLen + 16);
  const keyId = b[3 + kidLen + 16]!;
  const issuedAtMs = Number(dv.getBigUint64(3 + kidLen + 17));
  const encLen = dv.getUint16(h);
  need(h + 2 + encLen + 2, 'enc');
  const enc = b.slice(h + 2, h + 2 + encLen);
  const wLen = dv.getUint16(h + 2 + encLen);
  need(h + 4 + encLen + wLen, 'wrapped key');
  const wrapped = b.slice(h + 4 + encLen, h + 4 + encLen + wLen);
  return { kem, kid, sessionId, keyId, issuedAtMs, headerBytes: b.slice(0, h), enc, wrapped };
}

/**
 * Opens an envelope with the viewer's key pair (pass the pair: a non-extractable P-256 private
 * key alone fails in @hpke/core). Returns the raw content key, or undefined when this key pair
 * cannot open it (sealed for someone else, or tampered) — both look the same on purpose.
 */
export async function unwrapContentKey(
  env: ParsedEnvelope,
  serial: string,
  recipientKey: CryptoKeyPair,
): Promise<Uint8Array | undefined> {
  try {
    const pt = await (
      await suiteFor(env.kem)
    ).open({ recipientKey, enc: env.enc, info: HPKE_INFO }, env.wrapped, aadFor(env.headerBytes, serial));
    const k = new Uint8Array(pt);
    return k.length === 16 || k.length === 32 ? k : undefined;
  } catch {
    return undefined;
  }
}
