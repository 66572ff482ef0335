/**
 * The internal media hub: node-media-server 4.4.3's RTMP server alone (not its package entry, which
 * would also load its HTTP server, express and a store), bound to
 * 127.0.0.1, taking exactly one publisher (our capture ffmpeg, which must present a per-run
 * random key) on /live/<serial>. No HTTP/WebSocket listener at all — nobody can publish by HTTP
 * POST or WS — and every NMS-native player is refused: viewers reach the stream only through
 * `attach()`, which the gate and push call in-process after a grant is accepted, so there is no
 * loopback port that serves media without a grant.
 * Taming NMS: its logger is pinned (it forces debug), its process.exit on a busy port becomes a
 * retry on another port. NMS holds module-level state: one
 * hub per process.
 * Must never listen on anything but loopback.
 */
import { redactText, registerSecret } from '../redact.ts';
import { videoOnlyHeader } from '../sealing/flv-tags.ts';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';

const require = createRequire(import.meta.url);

interface NmsSession {
  id: string;
  ip: string;
  protocol: string;
  streamPath: string;
  streamQuery?: Record<string, unknown>;
  socket?: { destroy(): void };
  close(): void;
}
interface BroadcastLike {
  publisher: NmsSession | null;
  flvVideoHeader: Buffer | null;
  publishGraceMs: number;
  postPlay(s: object): string | null;
  donePlay(s: object): void;
  _finishPublish(): void;
}
interface RtmpServerLike {
  run(): void;
  stop(): void;
  handleListenError: (name: string, port: number) => (err: Error) => void;
  tcpServer?: { once(ev: string, fn: () => void): void };
}

/** What the gate and push hand to `attach`: a sink for FLV bytes (file header first). */
export interface FlvSink {
  /** Each FLV chunk: the 13-byte file header first, then whole tags. */
  write(chunk: Buffer): void;
  /** The hub is going away. */
  end(): void;
}

export interface LoopbackHub extends EventEmitter {
  readonly streamPath: string;
  /** rtmp://127.0.0.1:<port>/live/<serial>?k=<key>: only our ffmpeg knows it. Never log it. */
  readonly publishUrl: string;
  readonly rtmpPort: number;
  /** A publisher is attached and has sent its AVC sequence header. */
  isLive(): boolean;
  attach(sink: FlvSink): () => void;
  /** Ends the current publish now (deliberate stop): the next viewer gets no stale GOP. */
  dropPublish(): void;
  readonly counters: { publishRefused: number; playRefused: number; taps: number };
  close(): Promise<void>;
}

let instances = 0;

interface RtmpProtocol {
  streamApp?: string;
  lenscapRefused?: boolean;
  lenscapPublisher?: boolean;
  onPublish(msg: { streamName?: unknown }): void;
  onPlay(msg: unknown): void;
  invokeHandler(): void;
  dataHandler(): void;
}
type RtmpGuard = (rtmp: RtmpProtocol, verb: 'publish' | 'play', streamName: string) => boolean;
/** The running hub's admission rule; none (no hub) refuses everything. */
let rtmpGuard: RtmpGuard | undefined;
let rtmpGuardInstalled = false;

/**
 * NMS parses a whole socket read in one synchronous loop, and its publish/play hooks run in the
 * middle of it: closing the socket there does not stop the rest of that read, whose media messages
 * go straight into the stream's broadcast (viewers and GOP cache) — the refused session is not
 * even checked to be the publisher. So refusal happens at the protocol parser, before NMS's own
 * handlers: a session whose publish is not ours (or that asks to play) is marked refused, its
 * remaining commands and media are dropped, and media is only ever taken from a session whose
 * publish we admitted.
 */
function installRtmpGuard(proto: RtmpProtocol): void {
  if (rtmpGuardInstalled) return;
  rtmpGuardInstalled = true;
  const { onPublish, invokeHandler, dataHandler } = proto;
  const streamNameOf = (msg: unknown) => {
    const n = (msg as { streamName?: unknown } | undefined)?.streamName;
    return typeof n === 'string' ? n : '';
  };
  proto.onPublish = function (this: RtmpProtocol, msg) {
    if (this.lenscapRefused) return;
    if (!rtmpGuard?.(this, 'publish', streamNameOf(msg))) {
      this.lenscapRefused = true;
      return;
    }
    this.lenscapPublisher = true;
    return onPublish.call(this, msg);
  };
  proto.onPlay = function (this: RtmpProtocol, msg) {
    if (this.lenscapRefused) return;
    rtmpGuard?.(this, 'play', streamNameOf(msg));
    // Never NMS's own play: viewers only ever get media through attach(), after a grant.
    this.lenscapRefused = true;
  };
  proto.invokeHandler = function (this: RtmpProtocol) {
    if (this.lenscapRefused) return;
    return invokeHandler.call(this);
  };
  proto.dataHandler = function (this: RtmpProtocol) {
    if (this.lenscapRefused || !this.lenscapPublisher) return;
    return dataHandler.call(this);
  };
}

export function pickLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface LoopbackHubOptions {
  serial: string;
  logger: Logger;
  /** 0 = pick a free loopback port. */
  rtmpPort?: number;
}

export async function createLoopbackHub(opts: LoopbackHubOptions): Promise<LoopbackHub> {
  if (instances > 0)
    throw new LenscapError(
      'ERR_HUB_RUNNING',
      'a media hub is already running in this process (node-media-server is a singleton)',
    );
  instances++;
  try {
    return await startLoopbackHub(opts);
  } catch (err) {
    instances--;
    throw err;
  }
}

async function startLoopbackHub(opts: LoopbackHubOptions): Promise<LoopbackHub> {
  const log = opts.logger.child({ module: 'hub' });
  const nmsLogger = require('node-media-server/src/core/logger.js') as {
    level: string;
    log(message: string, level?: string): void;
  };
  Object.defineProperty(nmsLogger, 'level', { get: () => 'error', set: () => undefined, configurable: true });
  // NMS prints to the console itself; its lines (stream paths, queries) go through our redaction
  // and into our log instead.
  nmsLogger.log = (message: string, level = 'info') => {
    if (level === 'error' || level === 'warn')
      log.warn({ code: 'NMS_LOG', nms: redactText(String(message)).slice(0, 500) }, 'node-media-server');
  };
  const Context = require('node-media-server/src/core/context.js') as {
    broadcasts: Map<string, BroadcastLike>;
    config: object;
  };
  const BroadcastServer = require('node-media-server/src/server/broadcast_server.js') as new (
    path: string,
  ) => BroadcastLike;
  // Only NMS's RTMP server: its package entry also loads express, JWT, a record/relay/history store
  // and an HTTP server the hub never uses (~14 MB of RSS at idle and ~1 s of start-up on a board).
  const NodeRtmpServer = require('node-media-server/src/server/rtmp_server.js') as new () => RtmpServerLike;
  const Rtmp = require('node-media-server/src/protocol/rtmp.js') as { prototype: RtmpProtocol };
  installRtmpGuard(Rtmp.prototype);

  const streamPath = `/live/${opts.serial}`;
  const key = randomBytes(18).toString('base64url');
  // Cut wherever it shows up (ffmpeg's capture errors echo the publish URL).
  registerSecret(key);
  const counters = { publishRefused: 0, playRefused: 0, taps: 0 };
  const emitter = new EventEmitter();

  let nms: RtmpServerLike | undefined;
  let port = 0;
  for (let attempt = 0; attempt < 5 && !nms; attempt++) {
    port = opts.rtmpPort || (await pickLoopbackPort());
    // NMS reads its config from the module-level context when a server is constructed.
    Context.config = {
      bind: '127.0.0.1',
      rtmp: { port, chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 },
    };
    const candidate = new NodeRtmpServer();
    // NMS calls process.exit(1) on a listen error; turn it into a failed attempt.
    let failed: (e: Error) => void = () => undefined;
    const listenFailed = new Promise<Error>((resolve) => (failed = resolve));
    candidate.handleListenError = () => (err) => failed(err);
    const listening = new Promise<null>((resolve) =>
      candidate.tcpServer?.once('listening', () => resolve(null)),
    );
    candidate.run();
    const err = await Promise.race([listenFailed, listening]);
    if (err) {
      candidate.stop();
      if (opts.rtmpPort)
        throw new LenscapError('ERR_HUB_PORT', `hub RTMP port 127.0.0.1:${port}: ${err.message}`);
      continue;
    }
    nms = candidate;
  }
  if (!nms) throw new LenscapError('ERR_HUB_PORT', 'could not bind the hub RTMP port on 127.0.0.1');

  // NMS's event emitter is module-level: listeners must be removed on close, or a later hub in the
  // same process would be judged by this one's key.
  const nmsEvents = (require('node-media-server/src/core/context.js') as { eventEmitter: EventEmitter })
    .eventEmitter;
  const hooks: Array<[string, (s: NmsSession) => void]> = [];
  const hook = (ev: string, fn: (s: NmsSession) => void) => {
    hooks.push([ev, fn]);
    nmsEvents.on(ev, fn);
  };
  const sessionOf = (rtmp: RtmpProtocol): NmsSession | undefined => {
    const all = (require('node-media-server/src/core/context.js') as { sessions: Map<string, NmsSession> })
      .sessions;
    for (const s of all.values()) if ((s as NmsSession & { rtmp?: unknown }).rtmp === rtmp) return s;
    return undefined;
  };
  rtmpGuard = (rtmp, verb, streamName) => {
    const [name = '', query = ''] = streamName.split('?', 2);
    const path = `/${rtmp.streamApp ?? ''}/${name}`;
    const ok =
      verb === 'publish' && path === streamPath && new URLSearchParams(query).getAll('k').join() === key;
    if (ok) return true;
    if (verb === 'publish') counters.publishRefused++;
    else counters.playRefused++;
    log.warn(
      {
        code: verb === 'publish' ? 'ERR_HUB_PUBLISH_REFUSED' : 'ERR_HUB_PLAY_REFUSED',
        protocol: 'rtmp',
        path,
      },
      verb === 'publish' ? 'hub: publish refused (not our pipeline)' : 'hub: native play refused',
    );
    // destroy, not end: nothing more from this socket is read (the current read is dropped above).
    sessionOf(rtmp)?.socket?.destroy();
    return false;
  };
  // Second line (other protocols, should NMS ever route one here): refuse in NMS's own hooks too.
  hook('prePublish', (s) => {
    if (s.protocol !== 'rtmp' || s.streamPath !== streamPath || s.streamQuery?.k !== key) {
      counters.publishRefused++;
      log.warn(
        { code: 'ERR_HUB_PUBLISH_REFUSED', protocol: s.protocol, path: s.streamPath },
        'hub: publish refused (not our pipeline)',
      );
      // destroy, not end: no further bytes from this socket are parsed.
      if (s.socket) s.socket.destroy();
      else s.close();
      return;
    }
    emitter.emit('publish');
  });
  hook('donePublish', (s) => {
    if (s.streamPath === streamPath) emitter.emit('unpublish');
  });
  // In-process taps carry ip '' and never raise prePlay: anything that does is a native player.
  hook('prePlay', (s) => {
    counters.playRefused++;
    log.warn(
      { code: 'ERR_HUB_PLAY_REFUSED', protocol: s.protocol, path: s.streamPath },
      'hub: native play refused',
    );
    if (s.socket) s.socket.destroy();
    else s.close();
  });

  const broadcast = (): BroadcastLike => {
    let b = Context.broadcasts.get(streamPath);
    if (!b) {
      b = new BroadcastServer(streamPath);
      Context.broadcasts.set(streamPath, b);
    }
    // After an ffmpeg crash the same loopback client resumes within this window.
    b.publishGraceMs = 5000;
    return b;
  };

  let seq = 0;
  const sinks = new Set<FlvSink>();
  const server = nms;
  const hub = Object.assign(emitter, {
    streamPath,
    publishUrl: `rtmp://127.0.0.1:${port}${streamPath}?k=${key}`,
    rtmpPort: port,
    counters,
    isLive: () => {
      const b = Context.broadcasts.get(streamPath);
      return !!b && b.publisher !== null && b.flvVideoHeader !== null;
    },
    attach(sink: FlvSink) {
      let first = true;
      const send = (buf: Buffer) => {
        // NMS's header always announces audio; capture is video only (-an).
        if (first && buf.length === 13) buf = videoOnlyHeader(buf);
        first = false;
        sink.write(buf);
      };
      const sub = {
        id: `tap-${++seq}`,
        ip: '',
        protocol: 'flv',
        streamPath,
        inBytes: 0,
        outBytes: 0,
        sendBuffer: send,
        close: () => sink.end(),
      };
      const b = broadcast();
      sinks.add(sink);
      counters.taps = sinks.size;
      b.postPlay(sub);
      let detached = false;
      return () => {
        if (detached) return;
        detached = true;
        sinks.delete(sink);
        counters.taps = sinks.size;
        (Context.broadcasts.get(streamPath) ?? b).donePlay(sub);
      };
    },
    dropPublish() {
      Context.broadcasts.get(streamPath)?._finishPublish();
    },
    async close() {
      for (const s of [...sinks]) s.end();
      sinks.clear();
      server.stop();
      for (const [ev, fn] of hooks) nmsEvents.off(ev, fn);
      rtmpGuard = undefined;
      Context.broadcasts.delete(streamPath);
      instances--;
    },
  }) as LoopbackHub;
  log.info({ rtmp: `127.0.0.1:${port}` }, 'media hub on loopback (RTMP publish by our pipeline only)');
  return hub;
}
