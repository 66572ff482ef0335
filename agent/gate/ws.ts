/**
 * The viewer gate over WebSocket, the same path as HTTP. The grant comes in the upgrade's headers
 * (decided before the upgrade; a refusal is a raw HTTP answer) or, with the `lenscap-grant`
 * sub-protocol a browser can use, in the first message `{grant, dpop}` (decided after the upgrade;
 * a refusal is a text message and a close 4000 + status). The NMS publisher sub-protocols are 405.
 * Both ways start an accepted viewer's session the same way (`startWsSession`). `ws` is loaded on
 * the first WebSocket viewer, so a camera watched over HTTP-FLV never pays for it.
 * Must never attach a socket to the hub before an accept, nor send a binary byte with a refusal.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../log.ts';
import { remoteOf, type Authorizer, type Presented } from './authorize.ts';
import { serialOfPath } from './path.ts';
import type { ViewerSession } from '../sessions/table.ts';
import type { Accepted, GateCounters, ViewerLink } from './types.ts';
import type { StartSession } from './viewer-session.ts';

/** The WebSocket sub-protocol whose first message carries the grant and its DPoP proof. */
export const FIRST_MESSAGE_PROTOCOL = 'lenscap-grant';
const FIRST_MESSAGE_MS = 5000;
const MAX_PENDING = 32;

const STATUS_TEXT: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** A refusal written on the raw socket before any upgrade: a small JSON answer, then the socket ends. */
function writeRawRefusal(
  socket: Duplex,
  status: number,
  body: object,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(text)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Closes with `code`, and cuts the socket if the viewer does not answer the close in time. */
function closeSoon(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === ws.OPEN) ws.close(code, reason);
  setTimeout(() => ws.terminate(), 500).unref();
}

/**
 * A WebSocket viewer's link. The upgrade (101) has already gone out, so an answer before the
 * first keyframe is a text message `{"error": reason, "code"?}` and a close 4000 + status, like a
 * first-message refusal; after media began, exp closes 4001, privacy 4003, anything else 1000.
 */
function wsLink(ws: WebSocket, maxBuffered: number): ViewerLink {
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
      closeSoon(ws, 4000 + status, body.error);
    },
    hangUp: (reason) =>
      closeSoon(ws, reason === 'expired' ? 4001 : reason === 'privacy_mode' ? 4003 : 1000, reason),
  };
}

export interface WsDeps {
  counters: GateCounters;
  auth: Authorizer;
  startSession: StartSession;
  maxBuffered: number;
  log: Logger;
}

export interface WsHandler {
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
  /** Terminates every WebSocket (sessions are closed by the table first). */
  close(): void;
}

export function createWsHandler(d: WsDeps): WsHandler {
  const { counters, auth, log } = d;
  let pendingFirstMessages = 0;
  let wss: WebSocketServer | undefined;
  const webSockets = async (): Promise<WebSocketServer> =>
    (wss ??= new (await import('ws')).WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      // A first message carries a grant (≤ 4 KiB) and a DPoP proof (≤ 2 KiB).
      maxPayload: 8192,
    }));

  /**
   * The one start of an accepted WebSocket viewer's session, for both ways in: the link above,
   * and the viewer's close or error ends the session. Viewers have nothing to say; anything they
   * send is ignored (maxPayload bounds it).
   */
  function startWsSession(ws: WebSocket, verdict: Accepted, remote: string): ViewerSession {
    const session = d.startSession(verdict.claims, verdict.sealer, remote, wsLink(ws, d.maxBuffered));
    ws.on('close', () => session.close('client_gone'));
    ws.on('error', () => session.close('client_gone'));
    return session;
  }

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    counters.requests++;
    socket.on('error', () => undefined);
    const serial = serialOfPath(req.url);
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
    const verdict = await auth.authorize(req, serial, 'ws');
    if (!verdict.ok)
      return writeRawRefusal(socket, verdict.status, { error: verdict.error }, verdict.headers);
    const upgrader = await webSockets();
    if (socket.destroyed) return;
    if (auth.pastExp(verdict.claims)) {
      const late = auth.refuse('expired', auth.context(req, 'ws'), 'grant expired before the upgrade');
      return writeRawRefusal(socket, late.status, { error: late.error }, late.headers);
    }
    upgrader.handleUpgrade(req, socket, head, (ws) => {
      startWsSession(ws, verdict, remoteOf(req));
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
    const limited = auth.rateLimited(remote, pendingFirstMessages >= MAX_PENDING);
    if (limited) return writeRawRefusal(socket, limited.status, { error: limited.error }, limited.headers);
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
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ error }));
        closeSoon(ws, 4000 + status, error);
      };
      const timer = setTimeout(() => {
        const v = auth.refuse('missing', auth.context(req, 'ws'), 'no first message with the grant in time');
        refuseWs(v.status, v.error);
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
          let presented: Presented | undefined;
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
            ? await auth.authorize(req, serial, 'ws', presented)
            : auth.refuse(
                'malformed',
                auth.context(req, 'ws'),
                'first message is not {"grant": string, "dpop"?: string}',
              );
          if (!verdict.ok) return refuseWs(verdict.status, verdict.error);
          if (ws.readyState !== ws.OPEN) return done();
          if (auth.pastExp(verdict.claims)) {
            const late = auth.refuse(
              'expired',
              auth.context(req, 'ws'),
              'grant expired before the first byte',
            );
            return refuseWs(late.status, late.error);
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

  return {
    onUpgrade,
    close() {
      for (const c of wss?.clients ?? []) c.terminate();
      wss?.close();
    },
  };
}
