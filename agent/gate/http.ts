/**
 * The viewer gate over HTTP(S): `GET /live/<serial>.flv` (and its CORS preflight). Any other path
 * is 404, any other method 405; a request is authorized first, then an accepted viewer's session
 * starts and its 200 head goes out with the first keyframe (or a coded JSON answer instead).
 * Must never write a response head or a media byte before the decision.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import { remoteOf, type Authorizer } from './authorize.ts';
import { serialOfPath } from './path.ts';
import type { GateCounters } from './types.ts';
import type { StartSession } from './viewer-session.ts';

export function sendJson(
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

export interface HttpDeps {
  config: Config['gate'];
  counters: GateCounters;
  auth: Authorizer;
  startSession: StartSession;
  maxBuffered: number;
}

export function createHttpHandler(d: HttpDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { config: cfg, counters, auth } = d;

  function corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin && cfg.viewerOrigins.includes(origin))
      return { 'access-control-allow-origin': origin, vary: 'Origin' };
    return {};
  }

  return async function onRequest(req, res) {
    counters.requests++;
    const serial = serialOfPath(req.url);
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
    const verdict = await auth.authorize(req, serial, 'http');
    const cors = corsHeaders(req);
    if (!verdict.ok)
      return sendJson(res, verdict.status, { error: verdict.error }, { ...verdict.headers, ...cors });
    if (req.socket.destroyed) return;
    if (auth.pastExp(verdict.claims)) {
      const late = auth.refuse(
        'expired',
        auth.context(req, 'http'),
        'grant expired before the response head',
      );
      return sendJson(res, late.status, { error: late.error }, { ...late.headers, ...cors });
    }
    const session = d.startSession(verdict.claims, verdict.sealer, remoteOf(req), {
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
        // No flushHeaders(): the session writes the held header, metadata and the keyframe in this
        // same turn, and Node corks a turn's writes, so the head leaves with them in one write.
        return true;
      },
      send(b) {
        res.write(b);
        return res.writableLength <= d.maxBuffered;
      },
      answer(status, body) {
        if (res.headersSent || res.destroyed) return void res.destroy();
        sendJson(res, status, body, cors);
      },
      hangUp: () => res.destroy(),
    });
    res.on('close', () => session.close('client_gone'));
  };
}
