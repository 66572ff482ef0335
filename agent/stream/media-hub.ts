/**
 * The internal media hub: node-media-server 4.4.3's BroadcastServer (GOP cache, headers, fan-out)
 * alone, with no server of NMS's at all — no RTMP, HTTP or WebSocket listener, so no port on any
 * interface takes a publish or serves a play. Media comes in only from our capture ffmpeg's
 * stdout through `ingest()` (NMS's own FLV parser, hub-ingest.ts), the way NMS's FlvSession takes
 * an FLV publish; viewers get it only through `attach()`, which the gate and push call in-process
 * after a grant is accepted.
 * Taming NMS: its logger is pinned (it forces debug) and routed through our redaction. NMS holds
 * module-level state (the broadcasts map): one hub per process.
 * Must never listen on a socket, nor take media from anything but the run it handed a Writable to.
 */
import { redactText } from '../redact.ts';
import { videoOnlyHeader } from '../sealing/flv-tags.ts';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { EventEmitter } from 'node:events';
import { LenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { createFlvIngest, type IngestFailure, type NmsPacket } from './hub-ingest.ts';

const require = createRequire(import.meta.url);

interface NmsSession {
  id: string;
  ip: string;
  protocol: string;
  streamPath: string;
}
interface BroadcastLike {
  publisher: NmsSession | null;
  flvVideoHeader: Buffer | null;
  publishGraceMs: number;
  _publishGraceTimer: unknown;
  postPlay(s: object): string | null;
  donePlay(s: object): void;
  postPublish(s: object): string | null;
  donePublish(s: object): void;
  broadcastMessage(p: NmsPacket): void;
  _finishPublish(): void;
}

/** What the gate and push hand to `attach`: a sink for FLV bytes (file header first). */
export interface FlvSink {
  /** Each FLV chunk: the 13-byte file header first, then whole tags. */
  write(chunk: Buffer): void;
  /** The hub is going away. */
  end(): void;
}

export interface MediaHub extends EventEmitter {
  readonly streamPath: string;
  /** A publisher is attached and has sent its AVC sequence header. */
  isLive(): boolean;
  attach(sink: FlvSink): () => void;
  /**
   * One capture run's output: a Writable for ffmpeg's stdout (FLV). It becomes the publisher (the
   * previous run's, if its grace window is still open, is resumed: the timeline continues);
   * `onFailure` hears once of bytes that are not a good FLV stream (the run must be stopped).
   */
  ingest(onFailure: (f: IngestFailure) => void): Writable;
  /** Ends the current publish now (deliberate stop): the next viewer gets no stale GOP. */
  dropPublish(): void;
  readonly counters: { runs: number; ingestFailures: number; taps: number };
  close(): Promise<void>;
}

let instances = 0;

export interface MediaHubOptions {
  serial: string;
  logger: Logger;
}

export function createMediaHub(opts: MediaHubOptions): MediaHub {
  if (instances > 0)
    throw new LenscapError(
      'ERR_HUB_RUNNING',
      'a media hub is already running in this process (node-media-server is a singleton)',
    );
  instances++;
  try {
    return startMediaHub(opts);
  } catch (err) {
    instances--;
    throw err;
  }
}

/** After an ffmpeg crash the next run resumes the publish within this window. */
const PUBLISH_GRACE_MS = 5000;
/** Every capture run's session has this ip: NMS resumes a publish only for the same address. */
const CAPTURE_IP = 'capture';

function startMediaHub(opts: MediaHubOptions): MediaHub {
  const log = opts.logger.child({ module: 'hub' });
  const nmsLogger = require('node-media-server/src/core/logger.js') as {
    level: string;
    log(message: string, level?: string): void;
  };
  Object.defineProperty(nmsLogger, 'level', { get: () => 'error', set: () => undefined, configurable: true });
  // NMS prints to the console itself; its lines (stream paths) go through our redaction and into
  // our log instead.
  nmsLogger.log = (message: string, level = 'info') => {
    if (level === 'error' || level === 'warn')
      log.warn({ code: 'NMS_LOG', nms: redactText(String(message)).slice(0, 500) }, 'node-media-server');
  };
  // Only NMS's context and broadcast: no server module, so nothing of NMS can listen.
  const Context = require('node-media-server/src/core/context.js') as {
    broadcasts: Map<string, BroadcastLike>;
    eventEmitter: EventEmitter;
  };
  const BroadcastServer = require('node-media-server/src/server/broadcast_server.js') as new (
    path: string,
  ) => BroadcastLike;
  // Context.config stays NMS's default ({}: no auth); taps are internal (ip '') and never checked.

  const streamPath = `/live/${opts.serial}`;
  const counters = { runs: 0, ingestFailures: 0, taps: 0 };
  const emitter = new EventEmitter();
  /** The sessions of our capture runs: the only publishers this hub ever has. */
  const ours = new WeakSet<object>();

  // NMS's event emitter is module-level: listeners must be removed on close.
  const onDonePublish = (s: NmsSession) => {
    if (ours.has(s)) emitter.emit('unpublish');
  };
  Context.eventEmitter.on('donePublish', onDonePublish);

  const broadcast = (): BroadcastLike => {
    let b = Context.broadcasts.get(streamPath);
    if (!b) {
      b = new BroadcastServer(streamPath);
      Context.broadcasts.set(streamPath, b);
    }
    b.publishGraceMs = PUBLISH_GRACE_MS;
    return b;
  };

  let seq = 0;
  const sinks = new Set<FlvSink>();
  const hub = Object.assign(emitter, {
    streamPath,
    counters,
    isLive: () => {
      const b = Context.broadcasts.get(streamPath);
      return !!b && b.publisher !== null && b.flvVideoHeader !== null;
    },
    ingest(onFailure: (f: IngestFailure) => void): Writable {
      const b = broadcast();
      const prev = b.publisher;
      // The last run's stdout may not have ended yet (its exit is seen first): open its grace now
      // so this run resumes it rather than being refused as a second publisher.
      if (prev && ours.has(prev) && b._publishGraceTimer === null) b.donePublish(prev);
      const session = {
        id: `capture-${++seq}`,
        ip: CAPTURE_IP,
        protocol: 'flv',
        streamPath,
        streamApp: 'live',
        streamName: opts.serial,
        createTime: Date.now(),
        endTime: 0,
        inBytes: 0,
        outBytes: 0,
        playCount: 0,
      };
      ours.add(session);
      let err = b.postPublish(session);
      if (err !== null) {
        // Only a publisher we do not know could hold the path: end it, ours takes over.
        b._finishPublish();
        err = b.postPublish(session);
      }
      if (err !== null) throw new LenscapError('ERR_HUB_RUNNING', `hub refused the capture run: ${err}`);
      counters.runs++;
      emitter.emit('publish');
      // Media counts only while this run is the publisher of the hub's current broadcast: after a
      // deliberate stop (dropPublish) a late chunk of the old run must not refill the GOP cache.
      const current = () => Context.broadcasts.get(streamPath) === b && b.publisher === session;
      return createFlvIngest({
        onPacket: (packet) => {
          if (current()) b.broadcastMessage(packet);
        },
        onEnd: () => {
          if (current()) b.donePublish(session);
        },
        onFailure: (f) => {
          counters.ingestFailures++;
          log.error({ code: f.code, err: f.message }, 'hub: capture stream unreadable; its run is stopped');
          // Whatever this run put in the cache is suspect: the next viewer waits for a clean run.
          if (current()) b._finishPublish();
          onFailure(f);
        },
      });
    },
    attach(sink: FlvSink) {
      let first = true;
      const send = (buf: Buffer) => {
        // NMS's header always announces audio; capture is video only (-an).
        if (first && buf.length === 13) buf = videoOnlyHeader(buf);
        first = false;
        sink.write(buf);
      };
      // ip '' marks an internal session for NMS: no prePlay/postPlay events, no auth check.
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
      Context.broadcasts.get(streamPath)?._finishPublish();
      Context.eventEmitter.off('donePublish', onDonePublish);
      Context.broadcasts.delete(streamPath);
      instances--;
    },
  }) as MediaHub;
  log.info('media hub in process (capture ingested from its ffmpeg pipe; no listener)');
  return hub;
}
