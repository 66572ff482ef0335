/**
 * The camera side of a sealed session: a fresh AES-GCM content key per session (node:crypto),
 * wrapped once per key with HPKE to the bound viewer's key and carried in-band at every keyframe;
 * a 64-bit frame counter that never repeats within the session (it continues across key
 * rotations); rotation (on demand, or bounded by frames, time or bytes under one key) takes
 * effect at a keyframe so a late joiner always finds the key it needs.
 * Must never emit a coded frame in the clear, never reuse a (key, counter) pair, and never wrap
 * to a key other than the one the caller took from its viewer-key source.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { wrapContentKey } from './envelope.ts';
import {
  aadFor,
  buildSealedBody,
  isKeyVideo,
  isSealableVideo,
  nonceFor,
  NAL_INTER,
  NAL_KEY,
} from './frame.ts';
import type { ViewerHpkeKey } from './viewer-keys.ts';

/**
 * No sealed session (push or `gate.seal`) lives on one content key: a new one (new HPKE envelope)
 * every 10 minutes or 256 MiB of video, whichever comes first, taking over at the next keyframe.
 * Bounds what one leaked content key opens; HPKE costs ~1.5 ms per rotation.
 */
export const SEAL_ROTATE_MS = 10 * 60_000;
export const SEAL_ROTATE_BYTES = 256 << 20;

export interface FrameSealerOptions {
  serial: string;
  viewer: ViewerHpkeKey;
  /** Content key size: AES-128-GCM (16, default) or AES-256-GCM (32). */
  keyBytes?: 16 | 32;
  /** Prepare a new content key after this many frames under one key (0 = never). */
  rotateAfterFrames?: number;
  /** …or after this long under one key (ms, by `now`; default SEAL_ROTATE_MS, 0 = never). */
  rotateAfterMs?: number;
  /** …or after this many plaintext payload bytes under one key (default SEAL_ROTATE_BYTES, 0 = never). */
  rotateAfterBytes?: number;
  now?: () => number;
  random?: (n: number) => Uint8Array;
}

interface KeyGen {
  keyId: number;
  key: Buffer;
  envelope: Uint8Array;
}

export interface FrameSealer {
  readonly sessionId: Uint8Array;
  readonly kid: string;
  /** Seals a coded frame; other tag bodies (sequence header) come back unchanged. */
  sealVideo(body: Uint8Array): Uint8Array;
  /** Prepares a new content key; it takes over at the next keyframe. */
  rotate(): Promise<void>;
  /** Resolves once no key preparation is in flight (tests, shutdown). */
  settled(): Promise<void>;
  readonly counters: { sealed: number; keyframes: number; rotations: number; counter: bigint };
}

export async function createFrameSealer(o: FrameSealerOptions): Promise<FrameSealer> {
  const random = o.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const now = o.now ?? Date.now;
  const keyBytes = o.keyBytes ?? 16;
  const rotateAfterMs = o.rotateAfterMs ?? SEAL_ROTATE_MS;
  const rotateAfterBytes = o.rotateAfterBytes ?? SEAL_ROTATE_BYTES;
  const sessionId = random(16);
  const mkKey = async (keyId: number): Promise<KeyGen> => {
    const key = Buffer.from(random(keyBytes));
    const envelope = await wrapContentKey({
      serial: o.serial,
      kid: o.viewer.kid,
      publicKey: o.viewer.publicKey,
      sessionId,
      keyId,
      issuedAtMs: now(),
      contentKey: key,
    });
    return { keyId, key, envelope };
  };
  let current = await mkKey(0);
  let next: KeyGen | undefined;
  let preparing: Promise<void> | undefined;
  let counter = 0n;
  let sinceRotation = 0;
  let bytesUnderKey = 0;
  let keySince = now();
  const counters = { sealed: 0, keyframes: 0, rotations: 0, counter };
  const alg = keyBytes === 32 ? 'aes-256-gcm' : 'aes-128-gcm';

  const rotate = (): Promise<void> => {
    preparing ??= mkKey((current.keyId + 1) & 0xff).then(
      (k) => {
        next = k;
      },
      () => {
        preparing = undefined; // keep the current key; a later frame retries
      },
    );
    return preparing;
  };

  return {
    sessionId,
    kid: o.viewer.kid,
    counters,
    rotate,
    settled: () => preparing ?? Promise.resolve(),
    sealVideo(body) {
      if (!isSealableVideo(body)) return body;
      const key = isKeyVideo(body);
      if (key) {
        counters.keyframes++;
        if (next) {
          current = next;
          next = undefined;
          preparing = undefined;
          counters.rotations++;
          sinceRotation = 0;
          bytesUnderKey = 0;
          keySince = now();
        }
      }
      sinceRotation++;
      bytesUnderKey += body.length - 5;
      // Bounded use of one key: whichever bound comes first prepares the next (in the background;
      // it takes over at the next keyframe, so a late joiner always finds its envelope there).
      if (
        (o.rotateAfterFrames && sinceRotation >= o.rotateAfterFrames) ||
        (rotateAfterBytes && bytesUnderKey >= rotateAfterBytes) ||
        (rotateAfterMs && now() - keySince >= rotateAfterMs)
      )
        void rotate();
      const c = counter++;
      counters.counter = counter;
      const nal = key ? NAL_KEY : NAL_INTER;
      const cipher = createCipheriv(alg, current.key, nonceFor(c));
      cipher.setAAD(aadFor(sessionId, current.keyId, c, body[0]!, nal));
      const ct = Buffer.concat([cipher.update(body.subarray(5)), cipher.final(), cipher.getAuthTag()]);
      counters.sealed++;
      return buildSealedBody({
        videoByte: body[0]!,
        cts: body.subarray(2, 5),
        key,
        nalHeader: nal,
        keyId: current.keyId,
        counter: c,
        ...(key ? { envelope: current.envelope } : {}),
        sealed: ct,
      });
    },
  };
}
