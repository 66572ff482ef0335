/**
 * The sealed event artifact (a motion snapshot or clip, issue 16): one fresh AES-256-GCM content
 * key per artifact, the whole plaintext sealed with it, and that key wrapped with HPKE (the live
 * envelope of envelope.ts) to EVERY viewer key of the current owner-signed membership. Layout
 * (big-endian; docs/events.md "Artifact format" is the byte-for-byte reference):
 *   magic "LCAR" | version u8 = 1 | kind u8 (1 snapshot, 2 clip) | membershipVersion u32 |
 *   idLen u8 | id | serialLen u8 | serial | typeLen u8 | contentType | startedAtMs u64 |
 *   durationMs u32 | nonce[12] | count u8 | count × (envLen u16 | envelope) | ciphertext+tag
 * Every byte before the ciphertext is the AES-GCM AAD, so serial, id, kind, membership version,
 * times and the recipient list are all bound to the content; each envelope's session id is the
 * first 16 bytes of SHA-256 over the fixed header (magic .. nonce), so a wrapped key cannot be
 * moved to another artifact either. Runs on WebCrypto only (Node 20 and the page's Worker).
 * Must never seal to a key the caller did not take from the membership, seal to nobody, nor
 * return plaintext that did not authenticate.
 */
import { parseEnvelope, unwrapContentKey, wrapContentKey, SealFormatError } from './envelope.ts';

export const ARTIFACT_MAGIC = 'LCAR';
export const ARTIFACT_VERSION = 1;
export const ARTIFACT_KINDS = { snapshot: 1, clip: 2 } as const;
export type ArtifactKindName = keyof typeof ARTIFACT_KINDS;
/** Largest plaintext sealed as one artifact (a capped clip is far below this). */
export const MAX_ARTIFACT_BYTES = 256 << 20;

export interface ArtifactRecipient {
  /** Key id in the membership (its JWK thumbprint). */
  kid: string;
  publicKey: JsonWebKey;
}

export interface ArtifactHeader {
  kind: ArtifactKindName;
  membershipVersion: number;
  id: string;
  serial: string;
  contentType: string;
  startedAtMs: number;
  durationMs: number;
}

export interface SealArtifactInput extends ArtifactHeader {
  recipients: readonly ArtifactRecipient[];
  plaintext: Uint8Array;
  /** Injected randomness (content key and nonce); default WebCrypto getRandomValues. */
  random?: (n: number) => Uint8Array;
}

export interface ParsedArtifact extends ArtifactHeader {
  nonce: Uint8Array;
  /** The kids the content key is wrapped to, in order. */
  kids: string[];
  envelopes: Uint8Array[];
  /** Bytes covered by the AES-GCM AAD. */
  aad: Uint8Array;
  /** Bytes the envelopes' session id is derived from. */
  fixed: Uint8Array;
  ciphertext: Uint8Array;
}

export type ArtifactOpenResult =
  | { ok: true; header: ArtifactHeader; kid: string; plaintext: Uint8Array }
  | { ok: false; code: ArtifactRefusal; detail: string };

/** The closed set of reasons an artifact is not opened. */
export type ArtifactRefusal =
  'ERR_SEAL_FORMAT' | 'ERR_SEAL_VERSION' | 'ERR_SEAL_NOT_FOR_YOU' | 'ERR_SEAL_TAMPERED';

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

const defaultRandom = (n: number) => crypto.getRandomValues(new Uint8Array(n));

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function short(s: string, what: string): Uint8Array {
  const b = te.encode(s);
  if (b.length === 0 || b.length > 255)
    throw new SealFormatError('ERR_SEAL_FORMAT', `${what} must be 1..255 bytes`);
  return concat([Uint8Array.of(b.length), b]);
}

function fixedHeader(h: ArtifactHeader, nonce: Uint8Array): Uint8Array {
  const kind = ARTIFACT_KINDS[h.kind];
  if (!kind) throw new SealFormatError('ERR_SEAL_FORMAT', 'unknown artifact kind');
  if (!Number.isInteger(h.membershipVersion) || h.membershipVersion < 0 || h.membershipVersion > 0xffffffff)
    throw new SealFormatError('ERR_SEAL_FORMAT', 'membership version out of range');
  if (!Number.isInteger(h.durationMs) || h.durationMs < 0 || h.durationMs > 0xffffffff)
    throw new SealFormatError('ERR_SEAL_FORMAT', 'duration out of range');
  const head = new Uint8Array(10);
  head.set(te.encode(ARTIFACT_MAGIC), 0);
  head[4] = ARTIFACT_VERSION;
  head[5] = kind;
  new DataView(head.buffer).setUint32(6, h.membershipVersion);
  const times = new Uint8Array(12);
  const dv = new DataView(times.buffer);
  dv.setBigUint64(0, BigInt(Math.max(0, Math.floor(h.startedAtMs))));
  dv.setUint32(8, h.durationMs);
  return concat([
    head,
    short(h.id, 'artifact id'),
    short(h.serial, 'serial'),
    short(h.contentType, 'content type'),
    times,
    nonce,
  ]);
}

async function sessionIdOf(fixed: Uint8Array): Promise<Uint8Array> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', fixed as BufferSource));
  return d.slice(0, 16);
}

/** Seals `plaintext` to every recipient. Throws SealFormatError (ERR_SEAL_NO_KEY with none). */
export async function sealArtifact(p: SealArtifactInput): Promise<Uint8Array> {
  if (p.recipients.length === 0)
    throw new SealFormatError('ERR_SEAL_NO_KEY', 'no viewer key to seal the artifact to');
  if (p.recipients.length > 255) throw new SealFormatError('ERR_SEAL_FORMAT', 'more than 255 recipients');
  if (p.plaintext.length > MAX_ARTIFACT_BYTES)
    throw new SealFormatError('ERR_SEAL_FORMAT', 'artifact larger than the sealing limit');
  const random = p.random ?? defaultRandom;
  const nonce = random(12);
  const contentKey = random(32);
  if (nonce.length !== 12 || contentKey.length !== 32)
    throw new SealFormatError('ERR_SEAL_FORMAT', 'random source returned the wrong length');
  const fixed = fixedHeader(p, nonce);
  const sessionId = await sessionIdOf(fixed);
  const envs: Uint8Array[] = [Uint8Array.of(p.recipients.length)];
  for (const r of p.recipients) {
    const env = await wrapContentKey({
      serial: p.serial,
      kid: r.kid,
      publicKey: r.publicKey,
      sessionId,
      keyId: 0,
      issuedAtMs: p.startedAtMs,
      contentKey,
    });
    const len = new Uint8Array(2);
    new DataView(len.buffer).setUint16(0, env.length);
    envs.push(len, env);
  }
  const aad = concat([fixed, ...envs]);
  const key = await crypto.subtle.importKey('raw', contentKey as BufferSource, 'AES-GCM', false, ['encrypt']);
  contentKey.fill(0);
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: nonce as BufferSource, additionalData: aad as BufferSource, tagLength: 128 },
      key,
      p.plaintext as BufferSource,
    ),
  );
  return concat([aad, ct]);
}

/** Parses the structure (no crypto). Throws SealFormatError naming what is wrong. */
export function parseArtifact(b: Uint8Array): ParsedArtifact {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const need = (n: number, what: string) => {
    if (b.length < o + n) throw new SealFormatError('ERR_SEAL_FORMAT', `artifact truncated at ${what}`);
  };
  need(10, 'header');
  if (td.decode(b.subarray(0, 4)) !== ARTIFACT_MAGIC)
    throw new SealFormatError('ERR_SEAL_FORMAT', 'not a sealed lenscap artifact');
  if (b[4] !== ARTIFACT_VERSION) throw new SealFormatError('ERR_SEAL_VERSION', `artifact version ${b[4]}`);
  const kind = b[5] === 1 ? 'snapshot' : b[5] === 2 ? 'clip' : undefined;
  if (!kind) throw new SealFormatError('ERR_SEAL_FORMAT', `unknown artifact kind ${b[5]}`);
  const membershipVersion = dv.getUint32(6);
  o = 10;
  const str = (what: string): string => {
    need(1, what);
    const n = b[o]!;
    if (n === 0) throw new SealFormatError('ERR_SEAL_FORMAT', `${what} is empty`);
    need(1 + n, what);
    let s: string;
    try {
      s = td.decode(b.subarray(o + 1, o + 1 + n));
    } catch {
      throw new SealFormatError('ERR_SEAL_FORMAT', `${what} is not UTF-8`);
    }
    o += 1 + n;
    return s;
  };
  const id = str('artifact id');
  const serial = str('serial');
  const contentType = str('content type');
  need(12 + 12 + 1, 'times/nonce');
  const startedAtMs = Number(dv.getBigUint64(o));
  const durationMs = dv.getUint32(o + 8);
  const nonce = b.slice(o + 12, o + 24);
  o += 24;
  const fixed = b.slice(0, o);
  const count = b[o]!;
  o += 1;
  if (count === 0) throw new SealFormatError('ERR_SEAL_FORMAT', 'artifact sealed to nobody');
  const envelopes: Uint8Array[] = [];
  const kids: string[] = [];
  for (let i = 0; i < count; i++) {
    need(2, 'envelope length');
    const n = dv.getUint16(o);
    need(2 + n, 'envelope');
    const env = b.slice(o + 2, o + 2 + n);
    kids.push(parseEnvelope(env).kid);
    envelopes.push(env);
    o += 2 + n;
  }
  need(16, 'ciphertext');
  return {
    kind,
    membershipVersion,
    id,
    serial,
    contentType,
    startedAtMs,
    durationMs,
    nonce,
    kids,
    envelopes,
    aad: b.slice(0, o),
    fixed,
    ciphertext: b.subarray(o),
  };
}

/**
 * Opens an artifact with the viewer's own key pair. `expect` pins what the caller asked for (the
 * camera's serial, and the artifact id when known): a mismatch is refused before any crypto.
 * "Sealed for someone else" and "tampered envelope" both read ERR_SEAL_NOT_FOR_YOU on purpose.
 */
export async function openArtifact(
  bytes: Uint8Array,
  keyPair: CryptoKeyPair,
  expect: { serial: string; id?: string },
): Promise<ArtifactOpenResult> {
  let a: ParsedArtifact;
  try {
    a = parseArtifact(bytes);
  } catch (e) {
    const code =
      e instanceof SealFormatError && e.code === 'ERR_SEAL_VERSION' ? 'ERR_SEAL_VERSION' : 'ERR_SEAL_FORMAT';
    return { ok: false, code, detail: e instanceof Error ? e.message : 'unparseable' };
  }
  if (a.serial !== expect.serial)
    return { ok: false, code: 'ERR_SEAL_FORMAT', detail: 'artifact is for another camera' };
  if (expect.id !== undefined && a.id !== expect.id)
    return { ok: false, code: 'ERR_SEAL_FORMAT', detail: 'artifact id differs from the one asked for' };
  const sessionId = await sessionIdOf(a.fixed);
  for (let i = 0; i < a.envelopes.length; i++) {
    let env;
    try {
      env = parseEnvelope(a.envelopes[i]!);
    } catch {
      continue;
    }
    if (env.keyId !== 0 || !sameBytes(env.sessionId, sessionId)) continue;
    const raw = await unwrapContentKey(env, a.serial, keyPair);
    if (!raw || raw.length !== 32) continue;
    const key = await crypto.subtle.importKey('raw', raw as BufferSource, 'AES-GCM', false, ['decrypt']);
    raw.fill(0);
    try {
      const pt = await crypto.subtle.decrypt(
        {
          name: 'AES-GCM',
          iv: a.nonce as BufferSource,
          additionalData: a.aad as BufferSource,
          tagLength: 128,
        },
        key,
        a.ciphertext as BufferSource,
      );
      const header: ArtifactHeader = {
        kind: a.kind,
        membershipVersion: a.membershipVersion,
        id: a.id,
        serial: a.serial,
        contentType: a.contentType,
        startedAtMs: a.startedAtMs,
        durationMs: a.durationMs,
      };
      return { ok: true, header, kid: env.kid, plaintext: new Uint8Array(pt) };
    } catch {
      return { ok: false, code: 'ERR_SEAL_TAMPERED', detail: 'artifact failed authentication' };
    }
  }
  return { ok: false, code: 'ERR_SEAL_NOT_FOR_YOU', detail: 'sealed for someone else' };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
