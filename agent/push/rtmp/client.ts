/**
 * A small RTMP client in the agent: handshake, connect, createStream, then publish (push mode)
 * or play (tests, tools), and FLV tags carried as RTMP messages unchanged. Push uses it instead
 * of an ffmpeg because a sealed frame is opaque to ffmpeg: its FLV demuxer must decode a slice to
 * learn the picture size and its muxer refuses to start without it ("dimensions not set"), so an
 * ffmpeg in the push path publishes only when a ciphertext happens to parse (docs/streaming.md).
 * Relays (nginx-rtmp, node-media-server) never decode; they forward these tags byte for byte.
 * Must never parse or rewrite a media body, log or echo the stream name (it may hold a stream
 * key), nor wait for the relay without a bound.
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { LenscapError } from '../../errors.ts';
import type { StreamCode } from '../../stream/codes.ts';
import { decodeAmf0, encodeAmf0, type Amf0Object, type Amf0Value } from './amf0.ts';
import {
  ChunkReader,
  encodeMessage,
  HANDSHAKE_BYTES,
  handshakeC0C1,
  MSG,
  type RtmpMessage,
} from './chunks.ts';
import { parseRtmpUrl, type RtmpTarget } from './url.ts';

export interface RtmpTag {
  /** FLV tag type: 8 audio, 9 video, 18 script data. */
  type: number;
  /** Milliseconds (32 bits). */
  timestamp: number;
  body: Buffer;
}

export interface RtmpClientOptions {
  url: string;
  role: 'publish' | 'play';
  /** Bound on TCP/TLS connect, handshake, connect, createStream and publish/play (default 10 s). */
  timeoutMs?: number;
  /** Play: every audio, video and data message, in order. */
  onTag?: (tag: RtmpTag) => void;
  random?: (n: number) => Uint8Array;
  /** The socket (tests); default net / tls to the URL's host and port. */
  connect?: (target: RtmpTarget) => Duplex;
  /** Extra TLS options for rtmps (a private CA in tests). */
  tlsOptions?: tls.ConnectionOptions;
}

export interface RtmpClient {
  /** Resolves when the relay answered NetStream.Publish.Start / Play.Start; rejects with a coded error. */
  readonly ready: Promise<void>;
  /** Resolves once the connection is gone; `error` says why if it was not our close(). */
  readonly closed: Promise<{ code?: StreamCode; error?: string }>;
  /** Publish: queue one tag (held until ready). */
  sendTag(tag: RtmpTag): void;
  /** Bytes queued or in the socket's buffer, not yet handed to the kernel. */
  bufferedBytes(): number;
  close(): Promise<void>;
}

const OUT_CHUNK = 4096;
const CSID = { control: 2, command: 3, data: 4, audio: 5, video: 6, stream: 8 } as const;

export function openRtmp(o: RtmpClientOptions): RtmpClient {
  let target: RtmpTarget;
  try {
    target = parseRtmpUrl(o.url);
  } catch (err) {
    const e = err as LenscapError;
    const ready = Promise.reject(e);
    ready.catch(() => undefined);
    return {
      ready,
      closed: Promise.resolve({ code: 'ERR_RTMP_PROTOCOL', error: e.message }),
      sendTag: () => undefined,
      bufferedBytes: () => 0,
      close: async () => undefined,
    };
  }
  const random = o.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const sock: Duplex =
    o.connect?.(target) ??
    (target.tls
      ? tls.connect({ host: target.host, port: target.port, servername: target.host, ...o.tlsOptions })
      : net.connect({ host: target.host, port: target.port }));
  (sock as net.Socket).setNoDelay?.(true);

  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => undefined);
  let resolveClosed!: (r: { code?: StreamCode; error?: string }) => void;
  const closed = new Promise<{ code?: StreamCode; error?: string }>((r) => (resolveClosed = r));

  let isReady = false;
  let ending = false;
  let failure: { code: StreamCode; error: string } | undefined;
  let handshake: Buffer | undefined = Buffer.alloc(0);
  let streamId = 0;
  let windowAck = 0;
  let received = 0;
  let acked = 0;
  const queue: RtmpMessage[] = [];
  let queuedBytes = 0;

  const fail = (code: StreamCode, error: string) => {
    if (ending || failure) return;
    failure = { code, error };
    rejectReady(new LenscapError(code, error));
    sock.destroy();
  };
  const timer = setTimeout(
    () => fail('ERR_RTMP_TIMEOUT', `relay did not start the ${o.role} within ${o.timeoutMs ?? 10_000} ms`),
    o.timeoutMs ?? 10_000,
  );
  timer.unref?.();

  const write = (m: RtmpMessage) => {
    if (!sock.destroyed) sock.write(encodeMessage(m, OUT_CHUNK));
  };
  const command = (csid: number, sid: number, ...values: Amf0Value[]) =>
    write({ csid, type: MSG.commandAmf0, streamId: sid, timestamp: 0, body: encodeAmf0(...values) });
  const control = (type: number, body: Buffer) =>
    write({ csid: CSID.control, type, streamId: 0, timestamp: 0, body });

  const becomeReady = () => {
    if (isReady) return;
    isReady = true;
    clearTimeout(timer);
    for (const m of queue.splice(0)) write(m);
    queuedBytes = 0;
    resolveReady();
  };

  const onCommand = (m: RtmpMessage) => {
    let v: Amf0Value[];
    try {
      v = decodeAmf0(m.body);
    } catch (err) {
      fail('ERR_RTMP_PROTOCOL', `relay sent an unreadable command: ${(err as Error).message}`);
      return;
    }
    const name = v[0];
    const id = v[1];
    const info = (v[3] ?? {}) as Amf0Object;
    if (name === '_error') {
      // Only the status code: a description may echo the stream name.
      fail('ERR_RTMP_REFUSED', `relay refused command ${String(id)}: ${String(info.code ?? 'error')}`);
    } else if (name === '_result' && id === 1) {
      if (o.role === 'publish') {
        command(CSID.command, 0, 'releaseStream', 2, null, target.stream);
        command(CSID.command, 0, 'FCPublish', 3, null, target.stream);
      }
      command(CSID.command, 0, 'createStream', 4, null);
    } else if (name === '_result' && id === 4) {
      if (typeof v[3] !== 'number') return fail('ERR_RTMP_PROTOCOL', 'createStream gave no stream id');
      streamId = v[3];
      if (o.role === 'publish') command(CSID.stream, streamId, 'publish', 0, null, target.stream, 'live');
      else {
        command(CSID.stream, streamId, 'play', 0, null, target.stream, -2);
        const b = Buffer.alloc(10);
        b.writeUInt16BE(3, 0); // set buffer length
        b.writeUInt32BE(streamId, 2);
        b.writeUInt32BE(1000, 6);
        control(MSG.userControl, b);
      }
    } else if (name === 'onStatus') {
      const code = String(info.code ?? '');
      if (info.level === 'error' || /Failed|BadName|Rejected|NotFound/.test(code))
        fail('ERR_RTMP_REFUSED', `relay answered ${code || 'an error'}`);
      else if (code === 'NetStream.Publish.Start' || code === 'NetStream.Play.Start') becomeReady();
      else if (code === 'NetStream.Play.UnpublishNotify' || code === 'NetStream.Play.Stop') {
        if (o.role === 'play') sock.end();
      }
    }
  };

  const onMessage = (m: RtmpMessage) => {
    switch (m.type) {
      case MSG.commandAmf0:
        return onCommand(m);
      case MSG.windowAckSize:
        if (m.body.length >= 4) windowAck = m.body.readUInt32BE(0);
        return;
      case MSG.userControl:
        if (m.body.length >= 6 && m.body.readUInt16BE(0) === 6) {
          const pong = Buffer.alloc(6);
          pong.writeUInt16BE(7, 0);
          m.body.copy(pong, 2, 2, 6);
          control(MSG.userControl, pong);
        }
        return;
      case MSG.audio:
      case MSG.video:
      case MSG.dataAmf0:
        if (o.role === 'play') {
          becomeReady();
          o.onTag?.({ type: m.type, timestamp: m.timestamp, body: m.body });
        }
        return;
      default:
        return;
    }
  };
  const reader = new ChunkReader(onMessage);

  const onData = (d: Buffer) => {
    received += d.length;
    try {
      if (handshake) {
        handshake = Buffer.concat([handshake, d]);
        if (handshake.length < 1 + 2 * HANDSHAKE_BYTES) return;
        if (handshake[0] !== 3) return fail('ERR_RTMP_PROTOCOL', `relay speaks RTMP version ${handshake[0]}`);
        const s1 = handshake.subarray(1, 1 + HANDSHAKE_BYTES);
        const rest = handshake.subarray(1 + 2 * HANDSHAKE_BYTES);
        handshake = undefined;
        sock.write(Buffer.from(s1)); // C2 echoes S1
        const cs = Buffer.alloc(4);
        cs.writeUInt32BE(OUT_CHUNK);
        control(MSG.setChunkSize, cs);
        const props: Amf0Object =
          o.role === 'publish'
            ? {
                app: target.app,
                type: 'nonprivate',
                flashVer: 'FMLE/3.0 (compatible; lenscap)',
                tcUrl: target.tcUrl,
              }
            : {
                app: target.app,
                flashVer: 'LNX 9,0,124,2',
                tcUrl: target.tcUrl,
                fpad: false,
                capabilities: 15,
                audioCodecs: 3191,
                videoCodecs: 252,
                videoFunction: 1,
              };
        command(CSID.command, 0, 'connect', 1, props);
        if (rest.length) reader.push(rest);
      } else reader.push(d);
      if (windowAck > 0 && received - acked >= windowAck / 2) {
        acked = received;
        const b = Buffer.alloc(4);
        b.writeUInt32BE(received >>> 0);
        control(MSG.ack, b);
      }
    } catch (err) {
      const e = err as LenscapError;
      fail(e.code === 'ERR_RTMP_AMF' ? 'ERR_RTMP_AMF' : 'ERR_RTMP_PROTOCOL', e.message);
    }
  };

  sock.on('data', onData);
  sock.once(target.tls && !o.connect ? 'secureConnect' : 'connect', () =>
    sock.write(handshakeC0C1(random(HANDSHAKE_BYTES - 8))),
  );
  sock.on('error', (err: Error) => fail('ERR_RTMP_CLOSED', `relay connection: ${err.message}`));
  sock.on('close', () => {
    clearTimeout(timer);
    if (!failure && !ending) {
      failure = { code: 'ERR_RTMP_CLOSED', error: 'relay closed the connection' };
      rejectReady(new LenscapError(failure.code, failure.error));
    }
    resolveClosed(failure && !ending ? failure : {});
  });

  return {
    ready,
    closed,
    sendTag(tag) {
      if (o.role !== 'publish' || ending || failure) return;
      const csid = tag.type === MSG.video ? CSID.video : tag.type === MSG.audio ? CSID.audio : CSID.data;
      const m: RtmpMessage = { csid, type: tag.type, streamId, timestamp: tag.timestamp, body: tag.body };
      if (isReady) write(m);
      else {
        queue.push(m);
        queuedBytes += tag.body.length;
      }
    },
    bufferedBytes: () => queuedBytes + (sock.writableLength ?? 0),
    async close() {
      if (ending) return closed.then(() => undefined);
      ending = true;
      clearTimeout(timer);
      if (isReady && !sock.destroyed) {
        if (o.role === 'publish') command(CSID.command, 0, 'FCUnpublish', 0, null, target.stream);
        command(CSID.command, 0, 'deleteStream', 0, null, streamId);
      }
      sock.end();
      const t = setTimeout(() => sock.destroy(), 1500);
      t.unref?.();
      await closed;
      clearTimeout(t);
    },
  };
}
