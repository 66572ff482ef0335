/**
 * The viewer gate's authorization: one request (HTTP, or a WebSocket upgrade or first message) in,
 * a verdict out — the per-address refusal limit, the token's place (Bearer header, `?grant=` only
 * when allowed, or the first message), the path's serial, the viewer limit, the grant gate's
 * decision, then privacy, the limit, closing and `exp` again after the await, and with `gate.seal`
 * the viewer's membership key. Every refusal is counted, rate-recorded and reported once.
 * Must never touch the hub or a media byte, nor log a token whole.
 */
import type { IncomingMessage } from 'node:http';
import { gateSource, type DecisionContext, type ViewerOrigin } from '../grants/types.ts';
import type { RefusalReason } from '../grants/reasons.ts';
import type { Logger } from '../log.ts';
import { createFrameSealer } from '../sealing/sealer.ts';
import type { RefusalRateLimit } from './rate-limit.ts';
import type { GateCounters, GateDeps, Refused, Verdict } from './types.ts';

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/;

/** WebSocket `lenscap-grant`: the grant and proof from the first message, not from headers. */
export interface Presented {
  token: string | undefined;
  dpop: string | undefined;
}

export interface Authorizer {
  /** The whole decision for one request. */
  authorize(
    req: IncomingMessage,
    pathSerial: string,
    transport: 'http' | 'ws',
    presented?: Presented,
  ): Promise<Verdict>;
  /** A refusal decided by the gate itself (reported unless the grant gate already did). */
  refuse(reason: RefusalReason, ctx: DecisionContext, detail: string, reported?: boolean): Refused;
  /**
   * The 429 for an address over its refusal limit, or when the gate is `busy` (too many sockets
   * waiting for a first message): counted, and the token is not looked at.
   */
  rateLimited(remote: string, busy?: boolean): Refused | undefined;
  /** The decision context of a request: the viewer's origin as typed fields, no proof. */
  context(req: IncomingMessage, transport: 'http' | 'ws'): DecisionContext;
  /** exp is a hard edge by the camera's clock: true once no media byte may leave for these claims. */
  pastExp(claims: { exp: number }): boolean;
}

export interface AuthorizerDeps {
  gate: Pick<GateDeps, 'serial' | 'config' | 'grants' | 'privacy' | 'clock' | 'viewerKeys'>;
  /** Open viewer sessions (a shared table also holds pushes, which gate.maxViewers does not count). */
  viewers(): number;
  limiter: RefusalRateLimit;
  counters: GateCounters;
  log: Logger;
  isClosing(): boolean;
}

function statusFor(reason: RefusalReason): number {
  if (reason === 'missing' || reason === 'malformed' || reason === 'too_large') return 401;
  if (reason === 'rate_limited') return 429;
  if (reason === 'internal') return 503;
  return 403;
}

export const remoteOf = (req: IncomingMessage): string => req.socket.remoteAddress ?? 'unknown';

export function createAuthorizer(d: AuthorizerDeps): Authorizer {
  const { gate: deps, counters, limiter, log } = d;
  const cfg = deps.config;
  const scheme = cfg.tls ? 'https' : 'http';

  function count(reason: RefusalReason): void {
    counters.refused++;
    counters.refusedByReason[reason] = (counters.refusedByReason[reason] ?? 0) + 1;
  }

  function refuse(reason: RefusalReason, ctx: DecisionContext, detail: string, reported = false): Refused {
    count(reason);
    limiter.record(ctx.viewer?.remote ?? 'unknown');
    if (!reported) {
      if (deps.grants.reportRefusal) deps.grants.reportRefusal(reason, ctx, detail);
      else log.warn({ reason, source: ctx.source, detail }, `viewer refused: ${reason}`);
    }
    const status = statusFor(reason);
    const headers: Record<string, string> =
      status === 401 ? { 'www-authenticate': `Bearer realm="lenscap", error="invalid_token"` } : {};
    return { ok: false, status, error: reason, headers };
  }

  function rateLimited(remote: string, busy = false): Refused | undefined {
    if (!busy && !limiter.limited(remote)) return undefined;
    count('rate_limited');
    return { ok: false, status: 429, error: 'rate_limited', headers: { 'retry-after': '60' } };
  }

  function context(req: IncomingMessage, transport: 'http' | 'ws'): DecisionContext {
    const viewer: ViewerOrigin = { remote: remoteOf(req), transport };
    return { source: gateSource(viewer), viewer, purpose: 'view' };
  }

  const pastExp = (claims: { exp: number }) => deps.clock.now() >= claims.exp * 1000;

  async function authorize(
    req: IncomingMessage,
    pathSerial: string,
    transport: 'http' | 'ws',
    presented?: Presented,
  ): Promise<Verdict> {
    const dpop = presented ? presented.dpop : req.headers.dpop;
    const ctx: DecisionContext = {
      ...context(req, transport),
      // RFC 9449: the proof names this request — method and URL without query. A proof made for
      // another camera, path or host does not match.
      proof: {
        dpop: typeof dpop === 'string' ? dpop : undefined,
        htm: 'GET',
        htu: `${transport === 'ws' ? (cfg.tls ? 'wss' : 'ws') : scheme}://${String(req.headers.host ?? '').toLowerCase()}${new URL(req.url ?? '/', 'http://gate').pathname}`,
      },
    };
    const limited = rateLimited(ctx.viewer!.remote);
    if (limited) return limited;
    const url = new URL(req.url ?? '/', 'http://gate');
    const queryGrant = url.searchParams.get('grant');
    if (queryGrant !== null && !cfg.allowQueryToken) {
      // Refused without looking at it: it has already leaked into URLs and logs.
      return refuse(
        'missing',
        ctx,
        'grant in the URL query refused (gate.allowQueryToken is false); use Authorization: Bearer',
      );
    }
    const auth = presented ? undefined : req.headers.authorization;
    let token: string | undefined = presented?.token;
    if (auth !== undefined) {
      const m = BEARER.exec(auth);
      if (!m) return refuse('malformed', ctx, 'Authorization header is not "Bearer <grant>"');
      token = m[1];
    } else if (queryGrant !== null) token = queryGrant;
    if (pathSerial !== deps.serial)
      return refuse('wrong_audience', ctx, `path asks for serial ${JSON.stringify(pathSerial.slice(0, 64))}`);
    if (d.viewers() >= cfg.maxViewers)
      return refuse('too_many_viewers', ctx, `${d.viewers()} viewers already`);
    let decision;
    try {
      decision = await deps.grants.decide(token, ctx);
    } catch (err) {
      // The grant gate promises not to throw; if it does, that is a refusal, never an accept.
      return refuse('internal', ctx, `grant gate threw: ${(err as Error).message}`);
    }
    if (!decision.ok) return refuse(decision.reason, ctx, decision.detail, true);
    // The world may have changed while we awaited: check again before any byte flows.
    if (deps.privacy.isOn()) return refuse('privacy_mode', ctx, 'privacy turned on during verification');
    if (d.viewers() >= cfg.maxViewers)
      return refuse('too_many_viewers', ctx, 'limit reached during verification');
    if (d.isClosing()) return refuse('internal', ctx, 'gate closing');
    if (pastExp(decision.claims)) return refuse('expired', ctx, 'grant expired during verification');
    if (!cfg.seal) return { ok: true, claims: decision.claims };
    // gate.seal: the session is sealed to the viewer's membership key, or it does not start.
    const key = deps.viewerKeys?.hpkeKeyFor(decision.claims.sub);
    if (!key) return refuse('viewer_key_missing', ctx, 'gate.seal: no key for this viewer in the membership');
    try {
      const sealer = await createFrameSealer({
        serial: deps.serial,
        viewer: key,
        now: () => deps.clock.now(),
      });
      return { ok: true, claims: decision.claims, sealer };
    } catch (err) {
      return refuse('viewer_key_missing', ctx, `gate.seal: viewer key unusable: ${(err as Error).message}`);
    }
  }

  return { authorize, refuse, rateLimited, context, pastExp };
}
