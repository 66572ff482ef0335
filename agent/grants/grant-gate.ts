/**
 * The one decision point every caller uses (viewer gate, push command, CLI): verifies a grant,
 * audits the decision, consumes the jti on accept, and turns every refusal into a security event
 * (unsigned junk is recorded once per source and reason per window and within a global budget,
 * counted otherwise, see refusal-damper.ts; each distinct signed grant's refusal goes out
 * individually and is queued critical, repeats of the same grant are counted by jti).
 * Fail closed: an exception anywhere — verification, audit, replay persistence — is a refusal.
 * Must never touch HTTP, MQTT or media, and never log a token whole.
 */
import type { EventSink } from '../audit/events.ts';
import { DecisionLog, type DecisionLine, type DecisionLogIo } from '../audit/decision-log.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { isLenscapError, LenscapError } from '../errors.ts';
import { redactToken, type Logger } from '../log.ts';
import { stateLayout, type StateLayout } from '../state-layout.ts';
import { BUILD_TIME_MS } from './build-time.ts';
import type { RefusalReason } from './reasons.ts';
import { MANY_SOURCES, RefusalDamper, type DampedSummary } from './refusal-damper.ts';
import { ReplayCache } from './replay-cache.ts';
import { TrustStore } from './trust-store.ts';
import type { Decision, DecisionContext, GrantGate } from './types.ts';
import { verifyGrant, type GrantPolicy } from './verify.ts';
import { DpopReplayCache } from '../owner/dpop.ts';

/** What the grant gate asks owner-held trust (agent/owner/owner-trust.ts implements it). */
export interface OwnerHeldTrust {
  readonly mode: 'owner-held' | 'legacy';
  isClaimed(): boolean;
  isMember(sub: string): boolean;
  memberJkt(sub: string): string | undefined;
}

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
  /** Audit log rotation size; default 1 MiB (one previous generation kept). */
  auditMaxBytes?: number;
  /** The audit log's flush (default node:fs fdatasync); tests watch what is durable when. */
  auditIo?: DecisionLogIo;
  /**
   * How long an accept's flush may hold the event loop before the following ones run on libuv's
   * pool (default LOOP_FLUSH_BUDGET_MS; 0: always on the pool). See agent/audit/decision-log.ts.
   */
  auditLoopFlushBudgetMs?: number;
  /**
   * Owner-held trust. Once the owner has claimed the camera, its membership replaces the cloud's
   * binding record and every grant must be key-bound (cnf.jkt) with a DPoP proof.
   */
  owner?: OwnerHeldTrust;
  /** DPoP iat window (owner.dpopWindowSeconds); default 60. */
  dpopWindowSeconds?: number;
}

export class GrantGateService implements GrantGate {
  readonly trust: TrustStore;
  readonly counters = { accepted: 0, refused: 0, byReason: new Map<RefusalReason, number>() };
  private readonly policy: GrantPolicy;
  private readonly replay: ReplayCache;
  private readonly audit: DecisionLog;
  private readonly damper = new RefusalDamper();
  /**
   * Repeats of one and the same signed grant (its jti) refused for the same reason: the first per
   * window is recorded and queued critical like every signed refusal, the repeats are counted — a
   * leaked (expired, used) grant replayed ten thousand times must not flood the log or push the
   * misroute alarm out of the queue. Distinct signed grants are never counted together.
   */
  private readonly repeatDamper = new RefusalDamper(10_000, 4096, Number.POSITIVE_INFINITY);
  private readonly dpopReplay: DpopReplayCache;

  constructor(private readonly deps: GrantGateDeps) {
    this.trust =
      deps.trust ??
      TrustStore.load({
        serial: deps.serial,
        paths: deps.paths,
        clock: deps.clock,
        logger: deps.logger,
        events: deps.events,
      });
    this.policy = {
      serial: deps.serial,
      issuer: deps.grants.issuer,
      algorithms: deps.grants.algorithms,
      maxLifetimeSeconds: deps.grants.maxLifetimeSeconds,
      clockToleranceSeconds: deps.grants.clockToleranceSeconds,
      maxTokenBytes: deps.grants.maxTokenBytes,
      buildTimeMs: deps.buildTimeMs ?? BUILD_TIME_MS,
      relayAllowList: deps.relayAllowList,
      dpopWindowSeconds: deps.dpopWindowSeconds ?? 60,
    };
    this.dpopReplay = new DpopReplayCache(this.policy.dpopWindowSeconds ?? 60);
    this.replay = new ReplayCache({
      file: deps.paths.replayCache,
      maxEntries: deps.grants.replayCacheMaxEntries,
      clockToleranceSeconds: deps.grants.clockToleranceSeconds,
      maxLifetimeSeconds: deps.grants.maxLifetimeSeconds,
      clock: deps.clock,
      logger: deps.logger,
      journalFiles: [`${deps.paths.auditLog}.1`, deps.paths.auditLog],
    });
    // The accept lines are the replay records: before a generation is dropped, snapshot the ids.
    this.audit = new DecisionLog(
      deps.paths.auditLog,
      deps.auditMaxBytes,
      () => this.replay.snapshot(),
      deps.auditIo,
      deps.auditLoopFlushBudgetMs,
    );
  }

  async decide(token: string | undefined, ctx: DecisionContext): Promise<Decision> {
    const now = this.deps.clock.now();
    let decision: Decision;
    const owner = this.deps.owner;
    // Owner-held once the owner claimed: the cloud's binding record no longer speaks.
    const held = owner?.mode === 'owner-held';
    try {
      decision = verifyGrant(
        token,
        ctx,
        this.policy,
        {
          issuerKeys: this.trust.issuerKeys,
          isPrivacyOn: this.deps.isPrivacyOn,
          isClaimed: () => (held ? owner.isClaimed() : this.trust.isClaimed()),
          isBound: (sub) => (held ? owner.isMember(sub) : this.trust.isBound(sub)),
          isReplayed: (jti, iat) => this.replay.has(jti, iat),
          ownerHeld: () => held,
          memberJkt: (sub) => owner?.memberJkt(sub),
          isProofReplayed: (jkt, jti) => this.dpopReplay.has(jkt, jti, now),
        },
        now,
      );
    } catch (err) {
      decision = { ok: false, reason: 'internal', detail: `internal error: ${(err as Error).message}` };
    }
    if (decision.ok) {
      const { claims } = decision;
      try {
        // The jti is consumed in memory before anything else, so no second session can race in on
        // the same grant; then the audit line — fdatasync'd, and itself the durable replay record —
        // before the caller hears "accept" and before any stream can start. Concurrent accepts
        // share one flush (group commit, agent/audit/decision-log.ts); none is answered before it.
        // A failure is a refusal: a burnt jti costs the viewer one new grant, an unaudited or
        // forgettable session costs the model.
        this.replay.consume(claims.jti, (claims.exp + this.policy.clockToleranceSeconds) * 1000);
        // The proof id too (in memory: a proof names its grant by `ath`, and the grant's id is
        // durable, so a proof replayed after a restart still meets a used grant).
        if (
          decision.proof &&
          !this.dpopReplay.consume(decision.proof.jkt, decision.proof.jti, decision.proof.iat, now)
        )
          throw new LenscapError('ERR_REPLAY_CACHE_FULL', 'DPoP proof cache full of live ids');
        await this.audit.appendDurable({
          at: new Date(now).toISOString(),
          decision: 'accept',
          jti: claims.jti,
          sub: claims.sub,
          aud: claims.aud,
          source: ctx.source,
          purpose: ctx.purpose,
          exp: claims.exp,
          token: redactToken(token),
        });
      } catch (err) {
        const full = isLenscapError(err, 'ERR_REPLAY_CACHE_FULL');
        this.deps.logger.error(
          { code: full ? 'ERR_REPLAY_CACHE_FULL' : 'AUDIT_WRITE_FAILED', err: (err as Error).message },
          'could not record an accept; refusing',
        );
        decision = {
          ok: false,
          reason: full ? 'rate_limited' : 'internal',
          detail: full ? 'replay cache full of live grants' : 'audit or replay cache write failed',
          jti: claims.jti,
          sub: claims.sub,
          claimedAud: claims.aud,
          // The grant was good; the fault is ours: recorded one by one, kept like a signed refusal.
          signed: true,
        };
      }
    }
    if (decision.ok) {
      this.counters.accepted++;
      this.deps.logger.info(
        {
          decision: 'accept',
          jti: decision.claims.jti,
          sub: decision.claims.sub,
          source: ctx.source,
          purpose: ctx.purpose,
          exp: decision.claims.exp,
        },
        'grant accepted',
      );
      return decision;
    }
    this.recordRefusal(decision, token, ctx, now);
    return decision;
  }

  private recordRefusal(
    d: Extract<Decision, { ok: false }>,
    token: string | undefined,
    ctx: DecisionContext,
    now: number,
  ): void {
    this.counters.refused++;
    this.counters.byReason.set(d.reason, (this.counters.byReason.get(d.reason) ?? 0) + 1);
    for (const s of this.damper.flush(now)) this.recordSummary(s);
    for (const s of this.repeatDamper.flush(now)) this.recordSummary(s, true);
    if (d.signed && d.jti) {
      const { record, summaries } = this.repeatDamper.admit(d.jti, d.reason, now);
      for (const s of summaries) this.recordSummary(s, true);
      if (!record) return;
    }
    if (!d.signed) {
      const { record, summaries } = this.damper.admit(ctx.source, d.reason, now);
      for (const s of summaries) this.recordSummary(s);
      if (!record) return;
    }
    const at = new Date(now).toISOString();
    this.writeAudit({
      at,
      decision: 'refuse',
      reason: d.reason,
      jti: d.jti,
      sub: d.sub,
      aud: d.claimedAud,
      source: ctx.source,
      purpose: ctx.purpose,
      token: redactToken(token),
    });
    this.deps.logger.warn(
      {
        decision: 'refuse',
        reason: d.reason,
        jti: d.jti,
        sub: d.sub,
        claimedAud: d.claimedAud,
        source: ctx.source,
        detail: d.detail,
      },
      `grant refused: ${d.reason}`,
    );
    this.deps.events.emit(
      {
        type: 'grant_refused',
        at,
        serial: this.deps.serial,
        reason: d.reason,
        source: ctx.source,
        ...(d.jti ? { jti: d.jti } : {}),
        ...(d.sub ? { sub: d.sub } : {}),
        ...(d.claimedAud ? { claimedAud: d.claimedAud } : {}),
      },
      // The cloud's own word refused is never evicted for junk anyone can send.
      d.signed ? 'critical' : 'junk',
    );
  }

  /** The count of unauthenticated refusals that were not recorded one by one. */
  private recordSummary(s: DampedSummary, byJti = false): void {
    // byJti: repeats of one signed grant, counted by its jti (`source` holds the jti), any source.
    const source = byJti ? MANY_SOURCES : s.source;
    const jti = byJti ? { jti: s.source } : {};
    const at = new Date(this.deps.clock.now()).toISOString();
    const since = new Date(s.since).toISOString();
    this.writeAudit({
      at,
      decision: 'refuse',
      reason: s.reason,
      source,
      ...jti,
      purpose: 'unknown',
      suppressed: s.suppressed,
      since,
    });
    this.deps.logger.warn(
      { decision: 'refuse', reason: s.reason, source, ...jti, suppressed: s.suppressed, since },
      `grant refused: ${s.reason} × ${s.suppressed} more (counted, not recorded one by one)`,
    );
    this.deps.events.emit(
      {
        type: 'grant_refused',
        at,
        serial: this.deps.serial,
        reason: s.reason,
        source,
        ...jti,
        data: { suppressed: s.suppressed, since },
      },
      // A handful per window whatever the flood: they carry the counts, kept above the junk.
      'normal',
    );
  }

  private writeAudit(line: DecisionLine): void {
    try {
      this.audit.append(line);
    } catch (err) {
      this.deps.logger.error(
        { code: 'AUDIT_WRITE_FAILED', err: (err as Error).message },
        'could not record a refusal',
      );
    }
  }

  /**
   * Reports a refusal decided outside the grant pipeline (gate limits, push checks), through the
   * same path. `about`: the accepted grant's jti/sub when the refusal came after its signature held.
   */
  reportRefusal(
    reason: RefusalReason,
    ctx: DecisionContext,
    detail: string,
    about?: { jti: string; sub: string },
  ): void {
    const d = { ok: false as const, reason, detail, ...(about ? { ...about, signed: true } : {}) };
    this.recordRefusal(d, undefined, ctx, this.deps.clock.now());
  }

  /** `cmd/trust`: installs a newer trust bundle (see TrustStore.acceptTrustBundle). Throws coded errors. */
  acceptTrustBundle(jws: string, source?: string): { version: number } {
    return this.trust.acceptTrustBundle(jws, source);
  }

  /** `cmd/binding`: installs a newer binding record (see TrustStore.acceptBinding). Throws coded errors. */
  acceptBinding(jws: string, source?: string): { version: number; owner: string; viewers: number } {
    return this.trust.acceptBinding(jws, source);
  }

  close(): void {
    for (const summary of this.damper.flush(this.deps.clock.now(), true)) this.recordSummary(summary);
    for (const summary of this.repeatDamper.flush(this.deps.clock.now(), true))
      this.recordSummary(summary, true);
    this.audit.close();
    try {
      this.replay.snapshot();
    } catch (err) {
      // The audit log still holds every accept line; the next start rebuilds from it.
      this.deps.logger.warn(
        { code: 'REPLAY_SNAPSHOT_FAILED', err: (err as Error).message },
        'could not snapshot the replay cache at shutdown',
      );
    }
  }
}

/**
 * Builds the gate, loading the pinned root, trust bundle and binding record from the state dir
 * (`paths`, or `stateDir` laid out by stateLayout). Throws ERR_TRUST_* when the camera has no
 * valid trust material: it was never provisioned, and nothing may stream.
 */
export function createGrantGate(
  deps: Omit<GrantGateDeps, 'paths'> & ({ paths: StateLayout } | { stateDir: string }),
): GrantGateService {
  const paths = 'paths' in deps ? deps.paths : stateLayout(deps.stateDir);
  return new GrantGateService({ ...deps, paths });
}
