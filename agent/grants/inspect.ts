/**
 * The field engineer's view of one grant: decoded header and claims, then every check of the
 * camera's pipeline with pass/fail and the reason — without consuming the grant (the replay cache
 * is read, never written) and without emitting events.
 * Must never print the token itself.
 */
import type { Config } from '../config/schema.ts';
import type { Clock } from '../clock.ts';
import { MemoryEventSink } from '../audit/events.ts';
import { silentLogger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { BUILD_TIME_MS } from './build-time.ts';
import { ReplayCache } from './replay-cache.ts';
import { TrustStore } from './trust-store.ts';
import { GRANT_CHECKS, verifyGrant, type GrantCheck } from './verify.ts';
import type { Decision } from './types.ts';

export interface InspectReport {
  header: unknown;
  claims: unknown;
  checks: Array<{ check: GrantCheck; result: 'pass' | 'fail' | 'not run' }>;
  decision: Decision;
  notes: string[];
}

function decodePart(part: string | undefined): unknown {
  try {
    return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
  } catch {
    return '(not decodable)';
  }
}

/**
 * When the signature could not be checked (no trust material, unknown key), the claims are still
 * what the engineer needs to read: say what they would mean, clearly marked as unverified.
 */
function unverifiedHints(claims: unknown, opts: { serial: string; config: Config; clock: Clock }): string[] {
  if (typeof claims !== 'object' || claims === null) return [];
  const c = claims as Record<string, unknown>;
  const out: string[] = [];
  const now = opts.clock.now() / 1000;
  out.push(
    `unverified: aud ${JSON.stringify(c.aud)} ${c.aud === opts.serial ? 'matches' : 'does NOT match'} this camera ${JSON.stringify(opts.serial)}`,
  );
  out.push(
    `unverified: iss ${JSON.stringify(c.iss)} ${c.iss === opts.config.grants.issuer ? 'matches' : 'does NOT match'} the configured issuer`,
  );
  if (typeof c.exp === 'number')
    out.push(
      `unverified: ${c.exp > now ? `expires in ${Math.round(c.exp - now)} s` : `expired ${Math.round(now - c.exp)} s ago`}`,
    );
  return out;
}

export function inspectGrant(
  token: string,
  opts: { serial: string; config: Config; paths: StateLayout; clock: Clock; purpose: 'view' | 'push' },
): InspectReport {
  const notes: string[] = [];
  const [h, p] = token.split('.');
  let trust: TrustStore | undefined;
  try {
    trust = TrustStore.load({
      serial: opts.serial,
      paths: opts.paths,
      clock: opts.clock,
      logger: silentLogger(),
      events: new MemoryEventSink(),
    });
  } catch (err) {
    notes.push(`no trust material loaded (${(err as Error).message}); key and binding checks fail`);
  }
  // Read-only: inspect never consumes, so the cache is never written back.
  const replay = new ReplayCache({
    file: opts.paths.replayCache,
    maxEntries: opts.config.grants.replayCacheMaxEntries,
    clockToleranceSeconds: opts.config.grants.clockToleranceSeconds,
    maxLifetimeSeconds: opts.config.grants.maxLifetimeSeconds,
    clock: opts.clock,
    logger: silentLogger(),
    journalFiles: [`${opts.paths.auditLog}.1`, opts.paths.auditLog],
  });
  notes.push("privacy state is the running agent's; assumed off here");
  const passed: GrantCheck[] = [];
  const decision = verifyGrant(
    token,
    { source: 'cli:inspect', purpose: opts.purpose },
    {
      serial: opts.serial,
      issuer: opts.config.grants.issuer,
      algorithms: opts.config.grants.algorithms,
      maxLifetimeSeconds: opts.config.grants.maxLifetimeSeconds,
      clockToleranceSeconds: opts.config.grants.clockToleranceSeconds,
      maxTokenBytes: opts.config.grants.maxTokenBytes,
      buildTimeMs: BUILD_TIME_MS,
      relayAllowList: opts.config.stream.relayAllowList,
    },
    {
      issuerKeys: trust?.issuerKeys ?? new Map(),
      isPrivacyOn: () => false,
      isClaimed: () => trust?.isClaimed() ?? false,
      isBound: (sub) => trust?.isBound(sub) ?? false,
      isReplayed: (jti, iat) => replay.has(jti, iat),
    },
    opts.clock.now(),
    passed,
  );
  if (!decision.ok && !passed.includes('signature')) notes.push(...unverifiedHints(decodePart(p), opts));
  const checks = GRANT_CHECKS.map((check) => ({
    check,
    result: passed.includes(check)
      ? ('pass' as const)
      : !decision.ok && check === GRANT_CHECKS[passed.length]
        ? ('fail' as const)
        : ('not run' as const),
  }));
  return { header: decodePart(h), claims: decodePart(p), checks, decision, notes };
}
