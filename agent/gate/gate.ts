/**
 * The viewer gate: the camera's only media port. `GET /live/<serial>.flv` over HTTP(S) (http.ts),
 * and the same path over WebSocket (ws.ts). The grant (Authorization: Bearer, or `?grant=` only
 * when allowed; over WebSocket with the `lenscap-grant` sub-protocol, the first message
 * `{grant, dpop}`) is verified FIRST (authorize.ts, through the grant gate); only an accepted grant
 * starts a session (viewer-session.ts) that attaches to the in-process hub. Refusals are
 * 401/403/429/503 with `{"error":"<reason>"}` and no media byte. Any other method or path is
 * 404/405 and reaches nothing. Publishing through the gate is impossible: the gate only ever
 * creates hub subscribers. An accepted viewer's response head waits for the first keyframe; a
 * session that gets none is answered 503 `capture_failed`/`no_media` within
 * gate.firstKeyframeTimeoutSeconds, never held. This file composes the parts and owns the server
 * and the TLS context; the cuts (exp, privacy, stream.stop, membership, shutdown) are the session
 * table's (agent/sessions/), shared with push when the composition root hands one in.
 * Must never forward a byte before the decision, and never log a token whole.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createAuthorizer } from './authorize.ts';
import { createHttpHandler, sendJson } from './http.ts';
import { RefusalRateLimit } from './rate-limit.ts';
import { SessionTable } from '../sessions/table.ts';
import type { Gate, GateCounters, GateDeps } from './types.ts';
import { createSessionStarter } from './viewer-session.ts';
import { createWsHandler } from './ws.ts';

export type { CaptureFailure, Gate, GateCounters, GateDeps, GatePrivacy, GateStream } from './types.ts';
export { FIRST_MESSAGE_PROTOCOL } from './ws.ts';

export function createGate(deps: GateDeps): Gate {
  const cfg = deps.config;
  const log = deps.logger.child({ module: 'gate' });
  // The composition root hands in the table push shares, and wires its privacy watch itself;
  // alone (tests, the dev fleet), the gate keeps a table of its own.
  const ownTable = !deps.sessions;
  const sessions = deps.sessions ?? new SessionTable(deps.clock);
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
  let address: AddressInfo | undefined;
  let closing = false;

  const auth = createAuthorizer({
    gate: deps,
    viewers: () => sessions.count('view'),
    limiter: new RefusalRateLimit(cfg.refusalRateLimit.perMinute, deps.clock),
    counters,
    log,
    isClosing: () => closing,
  });
  const startSession = createSessionStarter({ gate: deps, sessions, counters, log });
  const onRequest = createHttpHandler({ config: cfg, counters, auth, startSession, maxBuffered });
  const ws = createWsHandler({ counters, auth, startSession, maxBuffered, log });

  const server: Server = cfg.tls
    ? createHttpsServer({ key: deps.tls!.key, cert: deps.tls!.cert, minVersion: 'TLSv1.2' })
    : createHttpServer();
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;

  const unwatchPrivacy = ownTable
    ? sessions.watchPrivacy(deps.privacy, (n) =>
        log.warn({ closed: n }, 'privacy on: every viewer session closed'),
      )
    : () => undefined;

  server.on('request', (req, res) => {
    onRequest(req, res).catch((err) => {
      log.error({ err: (err as Error).message }, 'gate request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
      else res.destroy();
    });
  });
  server.on('upgrade', (req, socket, head) => {
    ws.onUpgrade(req, socket, head).catch((err) => {
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
    closeByJti: (jti) => sessions.closeByJti(jti).length,
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
      unwatchPrivacy();
      // Viewers only: a shared table's pushes end when push stops (after the gate).
      sessions.closeAll('shutdown', 'view');
      if (ownTable) sessions.stop();
      ws.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections?.();
      });
    },
  };
}
