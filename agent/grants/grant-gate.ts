/**
 * The one decision point every caller uses (viewer gate, push command, CLI): verifies a grant,
 * audits the decision, consumes the jti on accept, and turns every refusal into a security event.
 * Fail closed: an exception anywhere — verification, audit, replay persistence — is a refusal.
 * Must never touch HTTP, MQTT or media, and never log a token whole.
 */
import type { EventSink } from '../audit/events.ts';
import { DecisionLog } from '../audit/decision-log.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { redactToken, type Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { BUILD_TIME_MS } from './build-time.ts';
import type { RefusalReason } from './reasons.ts';
import { ReplayCache } from './replay-cache.ts';
import { TrustStore } from './trust-store.ts';
import type { Decision, DecisionContext, GrantGate } from './types.ts';
import { verifyGrant, type GrantPolicy } from './verify.ts';

export interface GrantGateDeps {
  serial: string;
  grants: Config['grants'];
  relayAllowList: readonly string[];
  paths: StateLayout;
  clock: Clock;
  logger: Logger;
  events: EventSink;
  isPrivacyOn: () => boolean;
  /** Defaults to the build stamp; tests move it. */
  buildTimeMs?: number;
  /** Pre-loaded trust (tests, or a controller that loaded it already). */
  trust?: TrustStore;
}

export class GrantGateService implements GrantGate {
  readonly trust: TrustStore;
  readonly counters = { accepted: 0, refused: 0, byReason: new Map<RefusalReason, number>() };
  private readonly policy: GrantPolicy;
  private readonly replay: ReplayCache;
  private readonly audit: DecisionLog;

  constructor(private readonly deps: GrantGateDeps) {
    this.trust = deps.trust ?? TrustStore.load({ serial: deps.serial, paths: deps.paths, clock: deps.clock, logger: deps.logger, events: deps.events });
    this.policy = {
      serial: deps.serial,
      issuer: deps.grants.issuer,
      algorithms: deps.grants.algorithms,
      maxLifetimeSeconds: deps.grants.maxLifetimeSeconds,
      clockToleranceSeconds: deps.grants.clockToleranceSeconds,
      maxTokenBytes: deps.grants.maxTokenBytes,
      buildTimeMs: deps.buildTimeMs ?? BUILD_TIME_MS,
      relayAllowList: deps.relayAllowList,
    };
    this.replay = new ReplayCache(deps.paths.replayCache, deps.grants.replayCacheMaxEntries, deps.clock, deps.logger);
    this.audit = new DecisionLog(deps.paths.auditLog);
  }

  async decide(token: string | undefined, ctx: DecisionContext): Promise<Decision> {
    const now = this.deps.clock.now();
    let decision: Decision;
    try {
      decision = verifyGrant(token, ctx, this.policy, {
        issuerKeys: this.trust.issuerKeys,
        isPrivacyOn: this.deps.isPrivacyOn,
        isClaimed: () => this.trust.isClaimed(),
        isBound: (sub) => this.trust.isBound(sub),
        isReplayed: (jti) => this.replay.has(jti),
      }, now);
    } catch (err) {
      decision = { ok: false, reason: 'malformed', detail: `internal error: ${(err as Error).message}` };
    }
    if (decision.ok) {
      const { claims } = decision;
      try {
        // The durable audit line comes before the session can exist; the jti is consumed before
        // the caller hears "accept", so no second session can race in on the same grant.
        this.audit.append({ at: new Date(now).toISOString(), decision: 'accept', jti: claims.jti, sub: claims.sub, aud: claims.aud, source: ctx.source, purpose: ctx.purpose, exp: claims.exp, token: redactToken(token) }, true);
        this.replay.consume(claims.jti, (claims.exp + this.policy.clockToleranceSeconds) * 1000);
      } catch (err) {
        this.deps.logger.error({ code: 'AUDIT_WRITE_FAILED', err: (err as Error).message }, 'could not record an accept; refusing');
        decision = { ok: false, reason: 'malformed', detail: 'audit or replay cache write failed', jti: claims.jti, sub: claims.sub, claimedAud: claims.aud };
      }
    }
    if (decision.ok) {
      this.counters.accepted++;
      this.deps.logger.info({ decision: 'accept', jti: decision.claims.jti, sub: decision.claims.sub, source: ctx.source, purpose: ctx.purpose, exp: decision.claims.exp }, 'grant accepted');
      return decision;
    }
    this.recordRefusal(decision, token, ctx, now);
    return decision;
  }

  private recordRefusal(d: Extract<Decision, { ok: false }>, token: string | undefined, ctx: DecisionContext, now: number): void {
    this.counters.refused++;
    this.counters.byReason.set(d.reason, (this.counters.byReason.get(d.reason) ?? 0) + 1);
    const at = new Date(now).toISOString();
    try {
      this.audit.append({ at, decision: 'refuse', reason: d.reason, jti: d.jti, sub: d.sub, aud: d.claimedAud, source: ctx.source, purpose: ctx.purpose, token: redactToken(token) }, false);
    } catch (err) {
      this.deps.logger.error({ code: 'AUDIT_WRITE_FAILED', err: (err as Error).message }, 'could not record a refusal');
    }
    this.deps.logger.warn({ decision: 'refuse', reason: d.reason, jti: d.jti, sub: d.sub, claimedAud: d.claimedAud, source: ctx.source, detail: d.detail }, `grant refused: ${d.reason}`);
    this.deps.events.emit({
      type: 'grant_refused',
      at,
      serial: this.deps.serial,
      reason: d.reason,
      source: ctx.source,
      ...(d.jti ? { jti: d.jti } : {}),
      ...(d.sub ? { sub: d.sub } : {}),
      ...(d.claimedAud ? { claimedAud: d.claimedAud } : {}),
    });
  }

  /** Reports a refusal decided outside the grant pipeline (gate limits), through the same path. */
  reportRefusal(reason: RefusalReason, ctx: DecisionContext, detail: string): void {
    this.recordRefusal({ ok: false, reason, detail }, undefined, ctx, this.deps.clock.now());
  }

  close(): void {
    this.audit.close();
  }
}

export function createGrantGate(deps: GrantGateDeps): GrantGateService {
  return new GrantGateService(deps);
}
