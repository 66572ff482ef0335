/**
 * The viewer side: opens sealed frames with the viewer's own HPKE key pair, on WebCrypto only (the
 * same file is bundled into the browser Worker). A frame is delivered only if its envelope opened
 * with this key pair, its AES-GCM tag verifies under (session, key generation, counter, clear
 * header bytes), and its counter is above every counter delivered before in this session — gaps
 * (a relay dropping frames) are fine, reordering and replays are not. A session id seen before
 * cannot come back (an old recording spliced in after a newer session).
 * Must never return plaintext that did not authenticate, nor treat "not for me" as an error to retry.
 */
import { parseEnvelope, unwrapContentKey, SealFormatError } from './envelope.ts';
import { aadFor, isSealableVideo, nonceFor, parseSealedBody, plainBody } from './frame.ts';

export type OpenResult =
  | { ok: true; body: Uint8Array; frame: boolean; counter?: bigint }
  | { ok: false; code: OpenRefusal; detail: string };

/** The closed set of reasons a frame is not delivered. */
export type OpenRefusal =
  | 'ERR_SEAL_NOT_FOR_YOU'
  | 'ERR_SEAL_NO_KEY'
  | 'ERR_SEAL_REPLAY'
  | 'ERR_SEAL_TAMPERED'
  | 'ERR_SEAL_SESSION'
  | 'ERR_SEAL_FORMAT';

export interface FrameOpenerOptions {
  serial: string;
  keyPair: CryptoKeyPair;
}

interface Session {
  id: string;
  idBytes: Uint8Array;
  keys: Map<number, CryptoKey>;
  last: bigint;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export class FrameOpener {
  private session: Session | undefined;
  private readonly seen = new Set<string>();
  private readonly notMine = new Set<string>();
  /** true once an envelope opened; false once one did not and none has. */
  sealedForMe: boolean | undefined;
  readonly counters = { opened: 0, refused: 0, gaps: 0 };

  constructor(private readonly o: FrameOpenerOptions) {}

  private refuse(code: OpenRefusal, detail: string): OpenResult {
    this.counters.refused++;
    return { ok: false, code, detail };
  }

  /** Opens one FLV video tag body. AVC sequence headers (clear by design) pass through; nothing else does. */
  async open(body: Uint8Array): Promise<OpenResult> {
    if (body.length >= 2 && (body[0]! & 0x0f) === 7 && body[1] === 0) return { ok: true, body, frame: false };
    if (!isSealableVideo(body)) return this.refuse('ERR_SEAL_FORMAT', 'not an AVC video tag');
    let parts;
    try {
      parts = parseSealedBody(body);
    } catch (e) {
      return this.refuse('ERR_SEAL_FORMAT', e instanceof SealFormatError ? e.code : 'unparseable');
    }
    if (parts.envelope) {
      const r = await this.takeEnvelope(parts.envelope, parts.keyId);
      if (r) return r;
    }
    const s = this.session;
    // Before the key lookup: an old frame under a key generation already dropped is a replay too.
    if (s && parts.counter <= s.last) return this.refuse('ERR_SEAL_REPLAY', 'frame counter went backwards');
    const key = s?.keys.get(parts.keyId);
    if (!s || !key)
      return this.refuse(
        this.sealedForMe === false ? 'ERR_SEAL_NOT_FOR_YOU' : 'ERR_SEAL_NO_KEY',
        'no key for this frame yet',
      );
    let pt: ArrayBuffer;
    try {
      pt = await crypto.subtle.decrypt(
        {
          name: 'AES-GCM',
          iv: nonceFor(parts.counter) as BufferSource,
          additionalData: aadFor(
            s.idBytes,
            parts.keyId,
            parts.counter,
            parts.videoByte,
            parts.nalHeader,
          ) as BufferSource,
          tagLength: 128,
        },
        key,
        parts.sealed as BufferSource,
      );
    } catch {
      return this.refuse('ERR_SEAL_TAMPERED', 'frame failed authentication');
    }
    if (parts.counter > s.last + 1n && s.last >= 0n) this.counters.gaps++;
    s.last = parts.counter;
    this.counters.opened++;
    return { ok: true, body: plainBody(parts, new Uint8Array(pt)), frame: true, counter: parts.counter };
  }

  private async takeEnvelope(bytes: Uint8Array, frameKeyId: number): Promise<OpenResult | undefined> {
    let env;
    try {
      env = parseEnvelope(bytes);
    } catch (e) {
      return this.refuse('ERR_SEAL_FORMAT', e instanceof SealFormatError ? e.code : 'bad envelope');
    }
    if (env.keyId !== frameKeyId)
      return this.refuse('ERR_SEAL_FORMAT', 'envelope key id differs from the frame');
    const id = hex(env.sessionId);
    if (this.session?.id === id && this.session.keys.has(env.keyId)) return undefined;
    if (this.session?.id !== id && this.seen.has(id))
      return this.refuse('ERR_SEAL_SESSION', 'an earlier session came back');
    const tag = `${id}/${env.keyId}`;
    if (this.notMine.has(tag)) return this.refuse('ERR_SEAL_NOT_FOR_YOU', 'envelope is for another key');
    const raw = await unwrapContentKey(env, this.o.serial, this.o.keyPair);
    if (!raw) {
      this.notMine.add(tag);
      if (this.sealedForMe !== true) this.sealedForMe = false;
      return this.refuse('ERR_SEAL_NOT_FOR_YOU', 'envelope does not open with this key');
    }
    const key = await crypto.subtle.importKey('raw', raw as BufferSource, 'AES-GCM', false, ['decrypt']);
    raw.fill(0);
    if (this.session?.id !== id) {
      if (this.session) this.seen.add(this.session.id);
      this.seen.add(id);
      this.session = { id, idBytes: env.sessionId, keys: new Map(), last: -1n };
    }
    this.session!.keys.set(env.keyId, key);
    // Keep the current and previous generation only.
    for (const k of [...this.session!.keys.keys()])
      if (k !== env.keyId && k !== ((env.keyId + 255) & 0xff)) this.session!.keys.delete(k);
    this.sealedForMe = true;
    return undefined;
  }
}
