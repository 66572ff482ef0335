/**
 * The grant decision as a pure function: token + context + policy + current trust → accept with
 * claims, or one reason from the closed set. Cheap checks first (size, shape, header, key lookup),
 * so garbage costs microseconds; one native signature verification; then claims, time, scope,
 * privacy, binding and replay.
 * Must never accept on an exception (the caller wraps it), never compare the audience loosely,
 * and never consume the jti (that is the gate's job, once it has audited the accept).
 */
import type { VerificationKey, JwsAlg } from './jws.ts';
import { checkHeader, JwsError, parseCompact, verifySignature } from './jws.ts';
import type { RefusalReason } from './reasons.ts';
import type { Decision, DecisionContext, GrantClaims } from './types.ts';
import { DpopError, verifyDpopProof } from '../owner/dpop.ts';

export const GRANT_TYP = 'lenscap-grant+jwt';

export interface GrantPolicy {
  serial: string;
  issuer: string;
  algorithms: readonly JwsAlg[];
  maxLifetimeSeconds: number;
  clockToleranceSeconds: number;
  maxTokenBytes: number;
  /** Clock earlier than this (ms) → clock_untrusted. */
  buildTimeMs: number;
  /** Push mode: allowed relay URL prefixes; empty = any rtmp:// or rtmps:// URL. */
  relayAllowList: readonly string[];
  /** Owner-held mode: a DPoP proof's iat must be within this many seconds of now (default 60). */
  dpopWindowSeconds?: number;
}

export interface GrantState {
  issuerKeys: ReadonlyMap<string, VerificationKey>;
  isPrivacyOn(): boolean;
  isClaimed(): boolean;
  isBound(sub: string): boolean;
  /** `iat` lets a cache that lost its memory still refuse grants issued before the loss. */
  isReplayed(jti: string, iat: number): boolean;
  /**
   * Owner-held mode (agent/owner): the thumbprint of the key a grant for `sub` must be bound to
   * (`cnf.jkt`), from the owner-signed membership. Absent, or `ownerHeld()` false: legacy mode, no
   * key binding (isClaimed/isBound then speak for the cloud-signed binding record).
   */
  ownerHeld?(): boolean;
  memberJkt?(sub: string): string | undefined;
  isProofReplayed?(jkt: string, jti: string): boolean;
}

const MAX_ID = 128;

/** Thrown inside verifyGrant only; deliberately not an Error, so refusing captures no stack. */
class Refusal {
  constructor(
    readonly reason: RefusalReason,
    readonly detail: string,
  ) {}
}

function refuse(reason: RefusalReason, detail: string): never {
  throw new Refusal(reason, detail);
}

/** Unverified values go into audit lines only, truncated: they are attacker-controlled. */
function peek(v: unknown): string | undefined {
  return typeof v === 'string' ? v.slice(0, MAX_ID) : undefined;
}

function numericDate(payload: Record<string, unknown>, name: string, required: boolean): number | undefined {
  const v = payload[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    refuse('malformed', `claim ${name} must be a NumericDate`);
  return v;
}

function requiredString(payload: Record<string, unknown>, name: string, max: number): string {
  const v = payload[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    refuse('malformed', `claim ${name} must be a string of 1..${max} chars`);
  return v;
}

const RELAY_URL = /^rtmps?:\/\/(?:(?![/@])[\x21-\x7e])+\/[\x21-\x7e]+$/;

/**
 * Why a push relay URL is not acceptable, or undefined when it is: rtmp:// or rtmps:// only, a
 * host and a path, no credentials, no whitespace or control characters (the URL reaches ffmpeg),
 * and when an allow-list is configured, an entry that is a prefix ending on a boundary — so
 * `rtmp://relay.example` allows `rtmp://relay.example/live/x` but not `rtmp://relay.example.evil/x`.
 */
export function relayRefusal(relay: string, allowList: readonly string[]): string | undefined {
  if (relay.length > 2048 || !RELAY_URL.test(relay))
    return 'relay must be an rtmp:// or rtmps:// URL with a host and a path, without credentials';
  if (allowList.length === 0) return undefined;
  const allowed = allowList.some(
    (p) =>
      p.length > 0 &&
      relay.startsWith(p) &&
      (p.endsWith('/') || relay.length === p.length || relay[p.length] === '/'),
  );
  return allowed ? undefined : 'relay is not on stream.relayAllowList';
}

/** The checks in the order they run; `grant inspect` prints them. */
export const GRANT_CHECKS = [
  'present',
  'size',
  'shape',
  'header',
  'key',
  'signature',
  'claims',
  'issuer',
  'audience',
  'clock',
  'lifetime',
  'time',
  'scope',
  'privacy',
  'binding',
  'holder',
  'proof',
  'replay',
] as const;
export type GrantCheck = (typeof GRANT_CHECKS)[number];

/**
 * `passed`, when given, receives each check as it passes (for `grant inspect`); the hot path
 * passes nothing.
 */
export function verifyGrant(
  token: string | undefined,
  ctx: DecisionContext,
  policy: GrantPolicy,
  state: GrantState,
  nowMs: number,
  passed?: GrantCheck[],
): Decision {
  const ok = passed ? (c: GrantCheck) => void passed.push(c) : () => undefined;
  let peeked: { jti?: string; sub?: string; claimedAud?: string } = {};
  let signed = false;
  try {
    if (token === undefined || token.length === 0) refuse('missing', 'no grant presented');
    ok('present');
    if (token.length > policy.maxTokenBytes)
      refuse('too_large', `token is ${token.length} bytes, limit ${policy.maxTokenBytes}`);
    ok('size');
    let parsed;
    try {
      parsed = parseCompact(token, policy.maxTokenBytes);
    } catch (err) {
      if (err instanceof JwsError) refuse(err.reason, err.message);
      throw err;
    }
    const { payload } = parsed;
    ok('shape');
    peeked = {
      jti: peek(payload.jti),
      sub: peek(payload.sub),
      claimedAud:
        typeof payload.aud === 'string'
          ? peek(payload.aud)
          : Array.isArray(payload.aud)
            ? peek(JSON.stringify(payload.aud))
            : undefined,
    };

    let alg: JwsAlg;
    let kid: string;
    try {
      ({ alg, kid } = checkHeader(parsed.header, GRANT_TYP, policy.algorithms));
    } catch (err) {
      if (err instanceof JwsError) refuse(err.reason, err.message);
      throw err;
    }
    ok('header');
    const key = state.issuerKeys.get(kid);
    if (!key) refuse('unknown_key', `kid ${kid.slice(0, MAX_ID)} is not a grant issuer key`);
    if (key.alg !== alg) refuse('alg_not_allowed', `alg ${alg} does not match issuer key ${kid}`);
    ok('key');
    if (!verifySignature(alg, key.key, parsed)) refuse('bad_signature', 'signature does not verify');
    ok('signature');
    signed = true;

    // Signed from here on: claims are the cloud's word, checked against this camera's view.
    const iss = requiredString(payload, 'iss', 512);
    if (Array.isArray(payload.aud)) refuse('wrong_audience', 'aud must be a single string, found an array');
    const aud = requiredString(payload, 'aud', 256);
    const sub = requiredString(payload, 'sub', 256);
    const jti = requiredString(payload, 'jti', MAX_ID);
    const iat = numericDate(payload, 'iat', true)!;
    const exp = numericDate(payload, 'exp', true)!;
    const nbf = numericDate(payload, 'nbf', false);
    if (typeof payload.scope !== 'string') refuse('malformed', 'claim scope must be a string');
    const scope = payload.scope;
    if (payload.relay !== undefined && typeof payload.relay !== 'string')
      refuse('malformed', 'claim relay must be a string');
    const relay = payload.relay as string | undefined;

    ok('claims');
    if (iss !== policy.issuer)
      refuse('wrong_issuer', `iss ${JSON.stringify(iss.slice(0, MAX_ID))} is not the configured issuer`);
    ok('issuer');
    // Byte for byte: no trimming, case folding or Unicode normalisation — look-alikes are other cameras.
    if (aud !== policy.serial)
      refuse('wrong_audience', `grant is for ${JSON.stringify(aud)}, this camera is ${policy.serial}`);

    ok('audience');
    if (nowMs < policy.buildTimeMs)
      refuse('clock_untrusted', `system clock ${new Date(nowMs).toISOString()} is before the build time`);
    ok('clock');
    const now = nowMs / 1000;
    const tol = policy.clockToleranceSeconds;
    if (exp - iat > policy.maxLifetimeSeconds)
      refuse('lifetime_too_long', `exp - iat = ${exp - iat} s exceeds ${policy.maxLifetimeSeconds} s`);
    if (exp <= iat) refuse('malformed', 'exp is not after iat');
    ok('lifetime');
    // exp is a hard edge: every use of a grant here is media, and no media byte may leave at or
    // after exp by this camera's clock. The tolerance only softens iat/nbf (a cloud clock ahead).
    if (now >= exp) refuse('expired', `expired ${Math.round((now - exp) * 1000) / 1000} s ago`);
    if (nbf !== undefined && now < nbf - tol)
      refuse('not_yet_valid', `nbf is ${Math.round(nbf - now)} s in the future`);
    if (now < iat - tol) refuse('not_yet_valid', `iat is ${Math.round(iat - now)} s in the future`);

    ok('time');
    // Scope: "live", plus an optional "relay" token on push grants. A grant carrying a relay claim
    // (or the relay scope) never opens a viewer session; a push needs the relay claim.
    const scopes = scope.split(' ');
    if (
      !scopes.includes('live') ||
      scopes.some((s, i) => (s !== 'live' && s !== 'relay') || scopes.indexOf(s) !== i)
    ) {
      refuse(
        'scope_not_allowed',
        `scope ${JSON.stringify(scope.slice(0, MAX_ID))} is not "live" (or "live relay" for push)`,
      );
    }
    if (ctx.purpose === 'view' && (relay !== undefined || scopes.length !== 1))
      refuse('scope_not_allowed', 'a push grant (relay) cannot open a viewer session');
    if (ctx.purpose === 'push') {
      if (relay === undefined) refuse('scope_not_allowed', 'push needs a relay claim');
      const why = relayRefusal(relay, policy.relayAllowList);
      if (why) refuse('relay_not_allowed', why);
    }

    ok('scope');
    if (state.isPrivacyOn()) refuse('privacy_mode', 'privacy mode is on');
    ok('privacy');
    if (!state.isClaimed()) refuse('not_claimed', 'no binding record: camera not claimed');
    if (!state.isBound(sub))
      refuse(
        'viewer_not_bound',
        `viewer ${JSON.stringify(sub.slice(0, MAX_ID))} is not the owner or a listed viewer`,
      );
    ok('binding');
    let proof: { jkt: string; jti: string; iat: number } | undefined;
    let cnf: { jkt: string } | undefined;
    if (payload.cnf !== undefined) {
      const c = payload.cnf as { jkt?: unknown } | null;
      if (
        typeof c !== 'object' ||
        c === null ||
        typeof c.jkt !== 'string' ||
        !/^[A-Za-z0-9_-]{43}$/.test(c.jkt)
      )
        refuse('malformed', 'claim cnf must be {jkt: <RFC 7638 thumbprint>}');
      cnf = { jkt: c.jkt };
    }
    if (state.ownerHeld?.()) {
      // The grant must name the key the owner listed for this viewer; a grant minted for one
      // user and handed to another fails here or at the proof, never reaches a byte.
      const want = state.memberJkt?.(sub);
      if (!cnf) refuse('key_not_bound', 'owner-held camera: the grant carries no cnf.jkt');
      if (!want || cnf.jkt !== want)
        refuse('key_not_bound', "cnf.jkt is not this viewer's key in the owner-signed membership");
      ok('holder');
      const presented = ctx.proof;
      if (!presented?.dpop) refuse('proof_missing', 'owner-held camera: no DPoP proof with the grant');
      try {
        const p = verifyDpopProof(presented.dpop, {
          req: { htm: presented.htm, htu: presented.htu },
          jkt: cnf.jkt,
          token,
          nowMs,
          windowSeconds: policy.dpopWindowSeconds ?? 60,
        });
        proof = { jkt: cnf.jkt, ...p };
      } catch (err) {
        if (err instanceof DpopError) refuse('proof_invalid', `${err.code}: ${err.message}`);
        throw err;
      }
      if (state.isProofReplayed?.(cnf.jkt, proof.jti)) refuse('proof_replayed', 'DPoP proof id already used');
      ok('proof');
    }
    if (state.isReplayed(jti, iat)) refuse('replayed', 'grant id already used');
    ok('replay');

    const claims: GrantClaims = {
      iss,
      aud,
      sub,
      jti,
      iat,
      exp,
      scope,
      ...(nbf !== undefined ? { nbf } : {}),
      ...(relay !== undefined ? { relay } : {}),
      ...(cnf ? { cnf } : {}),
    };
    return proof ? { ok: true, claims, proof } : { ok: true, claims };
  } catch (err) {
    if (err instanceof Refusal)
      return { ok: false, reason: err.reason, detail: err.detail, ...peeked, ...(signed ? { signed } : {}) };
    // Fail closed: anything unexpected is a refusal, never an accept — and the camera's own fault.
    return {
      ok: false,
      reason: 'internal',
      detail: `internal error while verifying: ${(err as Error).message}`,
      ...peeked,
    };
  }
}
