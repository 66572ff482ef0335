/**
 * The viewer gate's contracts: what it is built from (deps, the stream it attaches to), what it
 * hands back (the gate, its counters), and the shapes its parts pass each other (a verdict, a
 * viewer link). Types only.
 * Must never hold behaviour: the parts live in authorize.ts, http.ts, ws.ts and viewer-session.ts.
 */
import type { AddressInfo } from 'node:net';
import type { Time } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { DecisionContext, GrantClaims, GrantGate } from '../grants/types.ts';
import type { RefusalReason } from '../grants/reasons.ts';
import type { Logger } from '../log.ts';
import type { PrivacySource } from '../privacy/state.ts';
import type { FrameSealer } from '../sealing/sealer.ts';
import type { ViewerKeySource } from '../sealing/viewer-keys.ts';
import type { Activity } from '../stream/activity.ts';
import type { FlvSink } from '../stream/media-hub.ts';
import type { CloseReason, SessionTable } from '../sessions/table.ts';

/** A capture failure as the stream reports it: a coded error (ERR_CAMERA_*, ERR_CAPTURE_EXITED, ERR_HUB_INGEST). */
export interface CaptureFailure {
  code: string;
  /** Failures in a row (1 = a single exit the supervisor restarts from at once). */
  consecutive?: number;
}

export interface GateStream {
  acquire(): () => void;
  attach(sink: FlvSink): () => void;
  /** Calls `fn` with each capture failure; returns the unsubscribe. Without it only the bound applies. */
  onCaptureFailed?(fn: (f: CaptureFailure) => void): () => void;
  /** The last capture failure while capture is not running (named in a `no_media` answer). */
  captureError?(): CaptureFailure | undefined;
}

/** The gate watches the same privacy source as the stream service. */
export type GatePrivacy = PrivacySource;

export interface GateDeps {
  serial: string;
  config: Config['gate'];
  grants: GrantGate & { reportRefusal?(reason: RefusalReason, ctx: DecisionContext, detail: string): void };
  stream: GateStream;
  privacy: GatePrivacy;
  /** The camera's clock: exp checks, session expiry timers and the refusal rate window. */
  clock: Time;
  logger: Logger;
  activity?: Activity;
  /** HTTPS with the device certificate when config.tls is true. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** A viewer whose socket buffers more than this is cut (bytes). */
  maxBufferedBytes?: number;
  /** With `gate.seal`: the membership's viewer keys; a viewer without one is refused `viewer_key_missing`. */
  viewerKeys?: ViewerKeySource;
  /**
   * The session table shared with push (agent/media.ts), whose owner watches privacy and stops it;
   * without it the gate keeps its own table and does both.
   */
  sessions?: SessionTable;
}

export interface GateCounters {
  requests: number;
  accepted: number;
  refused: number;
  refusedByReason: Record<string, number>;
  notFound: number;
  methodNotAllowed: number;
  bytesOut: number;
  /** Viewer sessions ended, by close reason (`capture_failed`, `no_media`, `expired`, …). */
  closedByReason: Partial<Record<CloseReason, number>>;
}

export interface Gate {
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
  readonly address: AddressInfo | undefined;
  /** `http(s)://host:port` once listening. */
  readonly url: string | undefined;
  readonly sessions: SessionTable;
  readonly counters: GateCounters;
  /** stream.stop for a jti: cuts that grant's sessions (a shared table's push too); how many. */
  closeByJti(jti: string): number;
  /** A renewed device certificate: new TLS connections use it (open sessions keep theirs). */
  updateTls(tls: { key: string | Buffer; cert: string | Buffer }): void;
}

export type Accepted = { ok: true; claims: GrantClaims; sealer?: FrameSealer };
export type Refused = { ok: false; status: number; error: string; headers?: Record<string, string> };
/** The gate's answer to one request: an accept to start a session on, or what to answer. */
export type Verdict = Accepted | Refused;

/** How a session reaches its viewer: an HTTP response or a WebSocket. */
export interface ViewerLink {
  transport: 'http' | 'ws';
  /** The first keyframe is here: the HTTP response head goes out now. False when the viewer is gone. */
  open(): boolean;
  /** One media chunk; false when the viewer cannot keep up. */
  send(chunk: Buffer): boolean;
  /** The session ended before its first keyframe: a coded JSON answer instead of media. */
  answer(status: number, body: { error: string; code?: string }): void;
  /** The session ended after media began (or the viewer is gone): hang up. */
  hangUp(reason: CloseReason): void;
}
