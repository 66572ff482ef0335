/**
 * The viewer gate: the camera's only media port. `GET /live/<serial>.flv` over HTTP(S), and the
 * same path over WebSocket. The grant (Authorization: Bearer, or `?grant=` only when allowed; over
 * WebSocket with the `lenscap-grant` sub-protocol, the first message `{grant, dpop}`) is
 * verified by the grant gate FIRST; only an accepted grant attaches the connection to the
 * loopback hub. Refusals are 401/403/429 with `{"error":"<reason>"}` and no media byte. Any other
 * method or path is 404/405 and reaches nothing. Publishing through the gate is impossible: the
 * gate only ever creates hub subscribers. An accepted viewer's response head waits for the first
 * keyframe; a session that gets none is answered 503 `capture_failed`/`no_media` within
 * gate.firstKeyframeTimeoutSeconds, never held.
 * Must never forward a byte before the decision, and never log a token whole.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { unrefTimer, type Time, type TimerHandle } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { GrantClaims, GrantGate, DecisionContext } from '../grants/types.ts';
import type { RefusalReason } from '../grants/reasons.ts';
import type { Logger } from '../log.ts';
import type { FlvSink } from '../stream/loopback-hub.ts';
import type { Activity } from '../stream/activity.ts';
import type { PrivacySource } from '../privacy/state.ts';
import { RefusalRateLimit } from './rate-limit.ts';
import { SessionTable, type CloseReason, type ViewerSession } from './sessions.ts';
import { createFrameSealer, type FrameSealer } from '../sealing/sealer.ts';
import { classifyChunk } from './first-keyframe.ts';
import { flvSealingWriter } from '../sealing/flv-sealer.ts';
import type { ViewerKeySource } from '../sealing/viewer-keys.ts';

/** A capture failure as the stream reports it: a coded error (ERR_CAMERA_*, ERR_CAPTURE_EXITED). */
export interface CaptureFailure {
  code: string;
  /** Failures in a row (1 = a single exit the supervisor restarts from at once). */
  consecutive?: number;
}

/**
 * Capture failures in a row that answer a waiting viewer `capture_failed`: one exit after a good
 * run is restarted within a few hundred ms and the viewer gets its keyframe; a camera whose probe
 * fails again (or whose ffmpeg exits again) is not coming back soon.
 */
const FAILURES_BEFORE_ANSWER = 2;

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
  /** stream.stop for a jti: cuts that grant's sessions. */
  closeByJti(jti: string): number;
  /** A renewed device certificate: new TLS connections use it (open sessions keep theirs). */
  updateTls(tls: { key: string | Buffer; cert: string | Buffer }): void;
}

/** How a session reaches its viewer: an HTTP response or a WebSocket. */
interface ViewerLink {
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

/**
 * The status a session cut before its first keyframe answers with, or undefined when there is
 * nobody to answer (the viewer left) and the link just hangs up.
 */
function answerStatus(reason: CloseReason): number | undefined {
  switch (reason) {
    case 'client_gone':
    case 'slow_viewer':
      return undefined;
    case 'capture_failed':
    case 'no_media':
    case 'hub_closed':
    case 'shutdown':
      return 503;
    default:
      return 403;
  }
}

type Verdict =
  | { ok: true; claims: GrantClaims; sealer?: FrameSealer }
  | { ok: false; status: number; error: string; headers?: Record<string, string> };

const PATH = /^\/live\/([^/]+)\.flv$/;
/** The WebSocket sub-protocol whose first message carries the grant and its DPoP proof. */
export const FIRST_MESSAGE_PROTOCOL = 'lenscap-grant';
const FIRST_MESSAGE_MS = 5000;
const MAX_PENDING = 32;
/** Header, metadata and sequence headers held before the first keyframe: a few hundred bytes in practice. */
const MAX_HELD_BYTES = 256 * 1024;
const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/;

/** The path's serial, or undefined when its escaping is broken (answered 404). */
function pathSerial(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function statusFor(reason: RefusalReason): number {
  if (reason === 'missing' || reason === 'malformed' || reason === 'too_large') return 401;
  if (reason === 'rate_limited') return 429;
  if (reason === 'internal') return 503;
  return 403;
}

export function createGate(deps: GateDeps): Gate {
  const cfg = deps.config;
  const log = deps.logger.child({ module: 'gate' });
  const sessions = new SessionTable(deps.clock);
  const limiter = new RefusalRateLimit(cfg.refusalRateLimit.perMinute, deps.clock);
  const counters: GateCounters = {
    requests: 0,
    accepted: 0,
    refused: 0,
    refusedByReason: {},
    notFound: 0,
    methodNotAllowed: 0,
    bytesOut: 0,
    closedByReason: {},
  };
  const maxBuffered = deps.maxBufferedBytes ?? 4 * 1024 * 1024;
  const scheme = cfg.tls ? 'https' : 'http';
  if (cfg.tls && !deps.tls) throw new Error('gate.tls is true but no device key/cert was given');
  let nextId = 1;
  let pendingFirstMessages = 0;
  let address: AddressInfo | undefined;
  let closing = false;

  const server: Server = cfg.tls
    ? createHttpsServer({ key: deps.tls!.key, cert: deps.tls!.cert, minVersion: 'TLSv1.2' })
    : createHttpServer();
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  // ws is loaded on the first WebSocket viewer: a camera watched over HTTP-FLV (or not at all) never
  // pays for it at idle.
  let wss: WebSocketServer | undefined;
  const webSockets = async (): Promise<WebSocketServer> =>
    (wss ??= new (await import('ws')).WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      // A first message carries a grant (≤ 4 KiB) and a DPoP proof (≤ 2 KiB).
      maxPayload: 8192,
    }));

  const onPrivacy = (on: boolean) => {
    if (!on) return;
    const n = sessions.closeAll('privacy_mode');
    if (n) log.warn({ closed: n }, 'privacy on: every viewer session closed');
  };
  deps.privacy.on('change', onPrivacy);

  function corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin && cfg.viewerOrigins.includes(origin))
      return { 'access-control-allow-origin': origin, vary: 'Origin' };
    return {};
  }

  function refuse(
    reason: RefusalReason,
    ctx: DecisionContext,
    detail: string,
    remote: string,
    reported: boolean,
  ): Verdict {
    counters.refused++;
    counters.refusedByReason[reason] = (counters.refusedByReason[reason] ?? 0) + 1;
    limiter.record(remote);
    if (!reported) {
      if (deps.grants.reportRefusal) deps.grants.reportRefusal(reason, ctx, detail);
      else log.warn({ reason, source: ctx.source, detail }, `viewer refused: ${reason}`);
    }
    const status = statusFor(reason);
    const headers: Record<string, string> =
      status === 401 ? { 'www-authenticate': `Bearer realm="lenscap", error="invalid_token"` } : {};
    return { ok: false, status, error: reason, headers };
  }

  const remoteOf = (req: IncomingMessage) => req.socket.remoteAddress ?? 'unknown';
  const httpCtx = (req: IncomingMessage): DecisionContext => ({
    source: `gate:${remoteOf(req)}`,
    purpose: 'view',
  });

  /** The whole decision for one request, HTTP or WebSocket. Touches no media. */
  async function authorize(
    req: IncomingMessage,
    pathSerial: string,
    transport: 'http' | 'ws' = 'http',
    /** WebSocket `lenscap-grant`: the grant and proof from the first message, not from headers. */
    presented?: { token: string | undefined; dpop: string | undefined },
  ): Promise<Verdict> {
    const remote = req.socket.remoteAddress ?? 'unknown';
    const dpop = presented ? presented.dpop : req.headers.dpop;
    const ctx: DecisionContext = {
      source: `gate:${remote}`,
      purpose: 'view',
      // RFC 9449: the proof names this request — method and URL without query. A proof made for
      // another camera, path or host does not match.
      proof: {
        dpop: typeof dpop === 'string' ? dpop : undefined,
        htm: 'GET',
        htu: `${transport === 'ws' ? (cfg.tls ? 'wss' : 'ws') : scheme}://${String(req.headers.host ?? '').toLowerCase()}${new URL(req.url ?? '/', 'http://gate').pathname}`,
      },
    };
    if (limiter.limited(remote)) {
      counters.refused++;
      counters.refusedByReason.rate_limited = (counters.refusedByReason.rate_limited ?? 0) + 1;
      return { ok: false, status: 429, error: 'rate_limited', headers: { 'retry-after': '60' } };
    }
    const url = new URL(req.url ?? '/', 'http://gate');
    const queryGrant = url.searchParams.get('grant');
    if (queryGrant !== null && !cfg.allowQueryToken) {
      // Refused without looking at it: it has already leaked into URLs and logs.
      return refuse(
        'missing',
        ctx,
        'grant in the URL query refused (gate.allowQueryToken is false); use Authorization: Bearer',
        remote,
        false,
      );
    }
    const auth = presented ? undefined : req.headers.authorization;
    let token: string | undefined = presented?.token;
    if (auth !== undefined) {
      const m = BEARER.exec(auth);
      if (!m) return refuse('malformed', ctx, 'Authorization header is not "Bearer <grant>"', remote, false);
      token = m[1];
    } else if (queryGrant !== null) token = queryGrant;
    if (pathSerial !== deps.serial)
      return refuse(
        'wrong_audience',
        ctx,
        `path asks for serial ${JSON.stringify(pathSerial.slice(0, 64))}`,
        remote,
        false,
      );
    if (sessions.size >= cfg.maxViewers)
      return refuse('too_many_viewers', ctx, `${sessions.size} viewers already`, remote, false);
    let decision;
    try {
      decision = await deps.grants.decide(token, ctx);
    } catch (err) {
      // The grant gate promises not to throw; if it does, that is a refusal, never an accept.
      return refuse('internal', ctx, `grant gate threw: ${(err as Error).message}`, remote, false);
    }
    if (!decision.ok) return refuse(decision.reason, ctx, decision.detail, remote, true);
    // The world may have changed while we awaited: check again before any byte flows.
    if (deps.privacy.isOn())
      return refuse('privacy_mode', ctx, 'privacy turned on during verification', remote, false);
    if (sessions.size >= cfg.maxViewers)
      return refuse('too_many_viewers', ctx, 'limit reached during verification', remote, false);
    if (closing) return refuse('internal', ctx, 'gate closing', remote, false);
    if (pastExp(decision.claims))
      return refuse('expired', ctx, 'grant expired during verification', remote, false);
    if (!cfg.seal) return { ok: true, claims: decision.claims };
    // gate.seal: the session is sealed to the viewer's membership key, or it does not start.
    const key = deps.viewerKeys?.hpkeKeyFor(decision.claims.sub);
    if (!key)
      return refuse(
        'viewer_key_missing',
        ctx,
        'gate.seal: no key for this viewer in the membership',
        remote,
        false,
      );
    try {
      const sealer = await createFrameSealer({
        serial: deps.serial,
        viewer: key,
        now: () => deps.clock.now(),
      });
      return { ok: true, claims: decision.claims, sealer };
    } catch (err) {
      return refuse(
        'viewer_key_missing',
        ctx,
        `gate.seal: viewer key unusable: ${(err as Error).message}`,
        remote,
        false,
      );
    }
  }

  /** exp is a hard edge by the camera's clock: true once no media byte may leave for these claims. */
  function pastExp(claims: { exp: number }): boolean {
    return deps.clock.now() >= claims.exp * 1000;
  }

  function sendJson(
    res: ServerResponse,
    status: number,
    body: object,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      connection: 'close',
      ...headers,
    });
    res.end(text);
  }

  function writeRawRefusal(
    socket: Duplex,
    status: number,
    body: object,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    const reasons: Record<number, string> = {
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      405: 'Method Not Allowed',
      429: 'Too Many Requests',
      503: 'Service Unavailable',
    };
    const lines = [
      `HTTP/1.1 ${status} ${reasons[status] ?? 'Error'}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(text)}`,
      'Connection: close',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /**
   * Joins an accepted viewer to the hub. The link's head (HTTP 200) waits for the first keyframe:
   * a session cut before it (capture failed, no keyframe in time, exp, privacy …) answers with a
   * coded JSON error instead; after it, the cut hangs up. `send` returns false when the viewer
   * cannot keep up.
   */
  function startSession(
    claims: GrantClaims,
    sealer: FrameSealer | undefined,
    remote: string,
    link: ViewerLink,
  ): ViewerSession {
    let detach: (() => void) | undefined;
    let release: (() => void) | undefined;
    let endActivity: (() => void) | undefined;
    let unwatchCapture: (() => void) | undefined;
    let waitTimer: TimerHandle | undefined;
    let closed = false;
    let opened = false;
    /** Header, metadata and sequence headers held until the first keyframe. */
    let held: Buffer[] = [];
    let heldBytes = 0;
    let captureCode: string | undefined;
    const stopWaiting = () => {
      unwatchCapture?.();
      unwatchCapture = undefined;
      if (waitTimer !== undefined) deps.clock.clearTimeout(waitTimer);
      waitTimer = undefined;
    };
    const session: ViewerSession = {
      id: nextId++,
      jti: claims.jti,
      sub: claims.sub,
      exp: claims.exp,
      remote,
      transport: link.transport,
      startedAt: deps.clock.now(),
      bytes: 0,
      close(reason) {
        if (closed) return;
        closed = true;
        // Detach first: nothing more is written once the cut is decided.
        detach?.();
        stopWaiting();
        held = [];
        release?.();
        endActivity?.();
        sessions.remove(session.id);
        counters.closedByReason[reason] = (counters.closedByReason[reason] ?? 0) + 1;
        log.info(
          {
            session: session.id,
            jti: session.jti,
            sub: session.sub,
            reason,
            bytes: session.bytes,
            ...(opened ? {} : { beforeMedia: true }),
            ...(captureCode && !opened ? { code: captureCode } : {}),
          },
          'viewer session closed',
        );
        const status = opened ? undefined : answerStatus(reason);
        if (status === undefined) return link.hangUp(reason);
        link.answer(status, { error: reason, ...(captureCode ? { code: captureCode } : {}) });
      },
    };
    sessions.add(session);
    counters.accepted++;
    // Watched before the lease: the lease may start capture, and its first failure must be seen.
    unwatchCapture = deps.stream.onCaptureFailed?.((f) => {
      if (closed || opened) return;
      captureCode = f.code;
      if ((f.consecutive ?? FAILURES_BEFORE_ANSWER) < FAILURES_BEFORE_ANSWER) return;
      session.close('capture_failed');
    });
    waitTimer = deps.clock.setTimeout(() => {
      if (closed || opened) return;
      captureCode = deps.stream.captureError?.()?.code;
      session.close('no_media');
    }, cfg.firstKeyframeTimeoutSeconds * 1000);
    unrefTimer(waitTimer);
    endActivity = deps.activity?.begin();
    release = deps.stream.acquire();
    log.info(
      {
        session: session.id,
        jti: claims.jti,
        sub: claims.sub,
        exp: claims.exp,
        remote,
        transport: link.transport,
      },
      'viewer session started',
    );
    const out = (chunk: Buffer) => {
      if (closed) return;
      session.bytes += chunk.length;
      counters.bytesOut += chunk.length;
      if (!link.send(chunk)) session.close('slow_viewer');
    };
    const sealing = sealer ? flvSealingWriter(sealer, out) : undefined;
    const forward = (chunk: Buffer) => {
      if (closed) return;
      if (!sealing) return out(chunk);
      try {
        sealing.write(chunk);
      } catch {
        // Not parseable as FLV: nothing unsealed may leave, so the session ends.
        session.close('hub_closed');
      }
    };
    detach = deps.stream.attach({
      write(chunk) {
        if (closed) return;
        // Checked before every chunk, the first one above all (the hub writes the FLV header and
        // the cached GOP the moment we attach): timers and sweeps only ever come after the edge.
        if (pastExp(session)) return session.close('expired');
        if (!opened) {
          const kind = classifyChunk(chunk);
          // Inter frames before the first keyframe cannot be decoded: never held, never sent.
          if (kind === 'frame') return;
          if (kind === 'other') {
            if (heldBytes + chunk.length <= MAX_HELD_BYTES) {
              held.push(chunk);
              heldBytes += chunk.length;
            }
            return;
          }
          opened = true;
          stopWaiting();
          if (!link.open()) return session.close('client_gone');
          const before = held;
          held = [];
          for (const c of before) forward(c);
        }
        forward(chunk);
      },
      end() {
        session.close('hub_closed');
      },
    });
    // A session closed from inside attach (exp, slow viewer) ran close() before detach existed.
    if (closed) detach();
    return session;
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.requests++;
    const url = new URL(req.url ?? '/', 'http://gate');
    const m = PATH.exec(url.pathname);
    const serial = m ? pathSerial(m[1]!) : undefined;
    if (serial === undefined) {
      counters.notFound++;
      return sendJson(res, 404, { error: 'not_found' });
    }
    if (req.method === 'OPTIONS') {
      const cors = corsHeaders(req);
      if (!cors['access-control-allow-origin']) return sendJson(res, 403, { error: 'origin_not_allowed' });
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'GET',
        'access-control-allow-headers': 'Authorization, DPoP',
        'access-control-max-age': '600',
        'content-length': '0',
      });
      return void res.end();
    }
    if (req.method !== 'GET') {
      // POST here would be an NMS-style publish: it reaches nothing.
      counters.methodNotAllowed++;
      req.resume();
      return sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, OPTIONS' });
    }
    const verdict = await authorize(req, serial);
    const cors = corsHeaders(req);
    if (!verdict.ok)
      return sendJson(res, verdict.status, { error: verdict.error }, { ...verdict.headers, ...cors });
    if (req.socket.destroyed) return;
    if (pastExp(verdict.claims)) {
      const late = refuse(
        'expired',
        httpCtx(req),
        'grant expired before the response head',
        remoteOf(req),
        false,
      );
      if (!late.ok) return sendJson(res, late.status, { error: late.error }, { ...late.headers, ...cors });
    }
    const remote = req.socket.remoteAddress ?? 'unknown';
    const session = startSession(verdict.claims, verdict.sealer, remote, {
      transport: 'http',
      open() {
        if (res.destroyed || req.socket.destroyed) return false;
        res.writeHead(200, {
          'content-type': 'video/x-flv',
          'cache-control': 'no-store',
          connection: 'close',
          'x-content-type-options': 'nosniff',
          ...cors,
        });
        res.flushHeaders();
        return true;
      },
      send(b) {
        res.write(b);
        return res.writableLength <= maxBuffered;
      },
      answer(status, body) {
        if (res.headersSent || res.destroyed) return void res.destroy();
        sendJson(res, status, body, cors);
      },
      hangUp: () => res.destroy(),
    });
    res.on('close', () => session.close('client_gone'));
  }

  /**
   * The one start of an accepted WebSocket viewer's session, for both ways in (grant in the
   * upgrade's headers, or in the first message): the link below, and the viewer's close or error
   * ends the session. Viewers have nothing to say; anything they send is ignored (maxPayload
   * bounds it).
   */
  function startWsSession(
    ws: WebSocket,
    verdict: { claims: GrantClaims; sealer?: FrameSealer },
    remote: string,
  ): ViewerSession {
    const session = startSession(verdict.claims, verdict.sealer, remote, wsLink(ws));
    ws.on('close', () => session.close('client_gone'));
    ws.on('error', () => session.close('client_gone'));
    return session;
  }

  /**
   * A WebSocket viewer's link. The upgrade (101) has already gone out, so an answer before the
   * first keyframe is a text message `{"error": reason, "code"?}` and a close 4000 + status, like a
   * first-message refusal; after media began, exp closes 4001, privacy 4003, anything else 1000.
   */
  function wsLink(ws: WebSocket): ViewerLink {
    const closeSoon = (code: number, reason: string) => {
      if (ws.readyState === ws.OPEN) ws.close(code, reason);
      setTimeout(() => ws.terminate(), 500).unref();
    };
    return {
      transport: 'ws',
      open: () => ws.readyState === ws.OPEN,
      send(b) {
        if (ws.readyState !== ws.OPEN) return true;
        ws.send(b);
        return ws.bufferedAmount <= maxBuffered;
      },
      answer(status, body) {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(body));
        closeSoon(4000 + status, body.error);
      },
      hangUp: (reason) =>
        closeSoon(reason === 'expired' ? 4001 : reason === 'privacy_mode' ? 4003 : 1000, reason),
    };
  }

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    counters.requests++;
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://gate');
    const m = PATH.exec(url.pathname);
    const serial = m ? pathSerial(m[1]!) : undefined;
    if (serial === undefined) {
      counters.notFound++;
      return writeRawRefusal(socket, 404, { error: 'not_found' });
    }
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '').toLowerCase();
    if (/\b(post|publisher)\b/.test(protocols) || req.method !== 'GET') {
      // NMS treats these sub-protocols as a publisher: never here.
      counters.methodNotAllowed++;
      return writeRawRefusal(socket, 405, { error: 'method_not_allowed' });
    }
    if (protocols.split(',').some((p) => p.trim() === FIRST_MESSAGE_PROTOCOL))
      return firstMessageUpgrade(req, socket, head, serial);
    const verdict = await authorize(req, serial, 'ws');
    if (!verdict.ok)
      return writeRawRefusal(socket, verdict.status, { error: verdict.error }, verdict.headers);
    const upgrader = await webSockets();
    if (socket.destroyed) return;
    if (pastExp(verdict.claims)) {
      const late = refuse('expired', httpCtx(req), 'grant expired before the upgrade', remoteOf(req), false);
      if (!late.ok) return writeRawRefusal(socket, late.status, { error: late.error }, late.headers);
    }
    upgrader.handleUpgrade(req, socket, head, (ws) => {
      startWsSession(ws, verdict, req.socket.remoteAddress ?? 'unknown');
    });
  }

  /**
   * A browser cannot set headers on a WebSocket: with the `lenscap-grant` sub-protocol the grant
   * and its DPoP proof travel in the first message, `{"grant": "...", "dpop": "..."}`, decided
   * exactly like the headers of an HTTP request (htu `ws(s)://host/live/<serial>.flv`). Until an
   * accept nothing is attached to the hub; a refusal is a text message `{"error": reason}` and a
   * close (4401/4403/4429, reason in the close frame), never a media byte. Bounded: a first
   * message within FIRST_MESSAGE_MS, at most MAX_PENDING sockets waiting for one.
   */
  async function firstMessageUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    serial: string,
  ): Promise<void> {
    const remote = remoteOf(req);
    if (pendingFirstMessages >= MAX_PENDING || limiter.limited(remote)) {
      counters.refused++;
      counters.refusedByReason.rate_limited = (counters.refusedByReason.rate_limited ?? 0) + 1;
      return writeRawRefusal(socket, 429, { error: 'rate_limited' }, { 'retry-after': '60' });
    }
    const upgrader = await webSockets();
    if (socket.destroyed) return;
    pendingFirstMessages++;
    let waiting = true;
    const done = () => {
      if (waiting) pendingFirstMessages--;
      waiting = false;
    };
    upgrader.handleUpgrade(req, socket, head, (ws) => {
      const refuseWs = (status: number, error: string) => {
        done();
        if (ws.readyState === ws.OPEN) {
          ws.send(JSON.stringify({ error }));
          ws.close(4000 + status, error);
        }
        setTimeout(() => ws.terminate(), 500).unref();
      };
      const timer = setTimeout(() => {
        const v = refuse('missing', httpCtx(req), 'no first message with the grant in time', remote, false);
        if (!v.ok) refuseWs(v.status, v.error);
      }, FIRST_MESSAGE_MS);
      timer.unref();
      ws.on('error', () => undefined);
      ws.once('close', () => {
        clearTimeout(timer);
        done();
      });
      ws.once('message', (data, isBinary) => {
        clearTimeout(timer);
        void (async () => {
          let presented: { token: string | undefined; dpop: string | undefined } | undefined;
          try {
            const m: unknown = isBinary ? undefined : JSON.parse(String(data));
            if (typeof m === 'object' && m !== null && !Array.isArray(m)) {
              const { grant, dpop } = m as Record<string, unknown>;
              if (typeof grant === 'string' && (dpop === undefined || typeof dpop === 'string'))
                presented = { token: grant, dpop };
            }
          } catch {
            /* not JSON: refused below */
          }
          const verdict = presented
            ? await authorize(req, serial, 'ws', presented)
            : refuse(
                'malformed',
                httpCtx(req),
                'first message is not {"grant": string, "dpop"?: string}',
                remote,
                false,
              );
          if (!verdict.ok) return refuseWs(verdict.status, verdict.error);
          if (ws.readyState !== ws.OPEN) return done();
          if (pastExp(verdict.claims)) {
            const late = refuse(
              'expired',
              httpCtx(req),
              'grant expired before the first byte',
              remote,
              false,
            );
            if (!late.ok) return refuseWs(late.status, late.error);
          }
          done();
          startWsSession(ws, verdict, remote);
        })().catch((err) => {
          log.error({ err: (err as Error).message }, 'gate first-message decision failed');
          refuseWs(503, 'internal');
        });
      });
    });
  }

  server.on('request', (req, res) => {
    onRequest(req, res).catch((err) => {
      log.error({ err: (err as Error).message }, 'gate request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
      else res.destroy();
    });
  });
  server.on('upgrade', (req, socket, head) => {
    onUpgrade(req, socket, head).catch((err) => {
      log.error({ err: (err as Error).message }, 'gate upgrade failed');
      socket.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  return {
    sessions,
    counters,
    get address() {
      return address;
    },
    get url() {
      return address
        ? `${scheme}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`
        : undefined;
    },
    closeByJti: (jti) => sessions.closeByJti(jti),
    updateTls: (tls) => {
      if (cfg.tls)
        (server as unknown as import('node:tls').Server).setSecureContext({
          key: tls.key,
          cert: tls.cert,
          minVersion: 'TLSv1.2',
        });
    },
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(cfg.port, cfg.host, () => {
          server.off('error', reject);
          address = server.address() as AddressInfo;
          log.info({ url: `${scheme}://${cfg.host}:${address.port}` }, 'viewer gate listening');
          resolve(address);
        });
      });
    },
    async close() {
      closing = true;
      deps.privacy.off('change', onPrivacy);
      sessions.closeAll('shutdown');
      sessions.stop();
      for (const c of wss?.clients ?? []) c.terminate();
      wss?.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections?.();
      });
    },
  };
}
