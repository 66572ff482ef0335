/**
 * Owner-held trust, the camera side: the claim (nonce out, proof of the label secret in), the
 * owner-signed membership (add/remove viewers, transfer of ownership), the local factory reset,
 * and the questions the rest of the agent asks: is this `sub` a member, which key must its grant
 * be bound to (`memberJkt`), which public key does sealing use (`viewerKey`, `viewerKeys`).
 * Every refusal is a coded error and a security event and changes nothing on disk.
 * Must never accept a document the cloud could produce on its own, nor log the claim secret.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { EventSink } from '../audit/events.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { LenscapError, isLenscapError, type ErrorCode } from '../errors.ts';
import { JwsError, parseCompact } from '../grants/jws.ts';
import type { Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { claimProofMatches } from './claim-proof.ts';
import { jwkThumbprint, parseSigningJwk, type SealingJwk, type SigningJwk } from './jwk.ts';
import { ClaimLockout } from './lockout.ts';
import { verifyMembership, type Member, type Membership } from './membership.ts';
import { MAX_MEMBERSHIP_VERSION, MembershipFloor } from './membership-floor.ts';
import {
  clearOwnerState,
  readClaimSecret,
  readOwnerState,
  writeOwnerState,
  type OwnerState,
} from './owner-store.ts';

export interface OwnerTrustDeps {
  serial: string;
  paths: StateLayout;
  clock: Clock;
  logger: Logger;
  events: EventSink;
  config: Config['owner'];
  randomBytes?: (n: number) => Buffer;
}

/** What sealing asks for: a member's HPKE public key and its id (RFC 7638 thumbprint). */
export interface ViewerKey {
  sub: string;
  role: 'owner' | 'viewer';
  kid: string;
  jwk: SealingJwk;
}

const MAX_OPEN_NONCES = 16;

export class OwnerTrust extends EventEmitter {
  private state: OwnerState | undefined;
  private membership: Membership | undefined;
  private readonly nonces = new Map<string, number>();
  private readonly lockout: ClaimLockout;
  private readonly random: (n: number) => Buffer;
  /** The membership floor in trust/floors.json (undefined only while a damaged store poisons). */
  private floor: MembershipFloor | undefined;

  private constructor(private readonly deps: OwnerTrustDeps) {
    super();
    this.lockout = new ClaimLockout(deps.config.lockout, deps.clock);
    this.random = deps.randomBytes ?? nodeRandomBytes;
  }

  /** Loads the installed owner and membership; an invalid file fails closed (unclaimed, logged). */
  static load(deps: OwnerTrustDeps): OwnerTrust {
    const t = new OwnerTrust(deps);
    try {
      t.floor = MembershipFloor.open(deps.paths);
      const state = readOwnerState(deps.paths);
      if (state) {
        const membership = verifyMembership(state.membership, {
          serial: deps.serial,
          epoch: state.epoch,
          signer: parseSigningJwk(state.signer, 'owner state signer'),
        });
        // An older copy of owner/state.json (a removed viewer back, an earlier owner) stops here.
        t.floor.checkInstalled(state.claimSeq ?? 1, membership.version);
        t.membership = membership;
        t.state = state;
      }
    } catch (err) {
      // Fail closed: nobody may view (grants refused `not_claimed`) until a reset and a new claim.
      t.poisoned = true;
      if (isLenscapError(err, 'ERR_MEMBERSHIP_ROLLBACK'))
        t.emitRefusal('membership_refused', 'state:owner', 'ERR_MEMBERSHIP_ROLLBACK');
      deps.logger.error(
        { code: isLenscapError(err) ? err.code : 'ERR_OWNER_STATE_INVALID', reason: 'not_claimed' },
        `owner state does not verify; every grant refused until a local reset: ${(err as Error).message}`,
      );
    }
    deps.logger.info(
      {
        mode: t.mode,
        membershipVersion: t.membership?.version ?? null,
        members: t.membership?.members.length ?? 0,
      },
      'owner trust loaded',
    );
    return t;
  }

  /** An owner-state file exists but does not verify: refuse everything rather than fall back. */
  private poisoned = false;

  /** `owner-held` once claimed (or when the owner file is damaged); `legacy` otherwise. */
  get mode(): 'owner-held' | 'legacy' {
    return this.membership || this.poisoned ? 'owner-held' : 'legacy';
  }

  isClaimed(): boolean {
    return this.membership !== undefined;
  }

  current(): Membership | undefined {
    return this.membership;
  }

  member(sub: string): Member | undefined {
    return this.membership?.members.find((m) => m.sub === sub);
  }

  isMember(sub: string): boolean {
    return this.member(sub) !== undefined;
  }

  /** The thumbprint a key-bound grant for `sub` must carry in `cnf.jkt`. */
  memberJkt(sub: string): string | undefined {
    return this.member(sub)?.jkt;
  }

  /** The HPKE public key a live stream for `sub` is sealed to (current verified membership). */
  viewerKey(sub: string): { kid: string; jwk: SealingJwk } | undefined {
    const m = this.member(sub);
    return m?.hpke && m.hpkeKid ? { kid: m.hpkeKid, jwk: m.hpke } : undefined;
  }

  /** Every member that has an HPKE key, owner first. */
  viewerKeys(): ViewerKey[] {
    const ms = this.membership?.members ?? [];
    return [...ms]
      .sort((a, b) => (a.role === b.role ? 0 : a.role === 'owner' ? -1 : 1))
      .flatMap((m) =>
        m.hpke && m.hpkeKid ? [{ sub: m.sub, role: m.role, kid: m.hpkeKid, jwk: m.hpke }] : [],
      );
  }

  /** `cmd/claim.nonce`: a fresh single-use nonce the owner's proof must cover. */
  claimNonce(): { serial: string; nonce: string; expiresAt: string; mode: string } {
    this.refuseUnlessClaimable();
    const now = this.deps.clock.now();
    for (const [n, until] of this.nonces) if (until <= now) this.nonces.delete(n);
    while (this.nonces.size >= MAX_OPEN_NONCES) this.nonces.delete(this.nonces.keys().next().value as string);
    const nonce = this.random(16).toString('base64url');
    const until = now + this.deps.config.claimNonceTtlSeconds * 1000;
    this.nonces.set(nonce, until);
    return { serial: this.deps.serial, nonce, expiresAt: new Date(until).toISOString(), mode: this.mode };
  }

  /**
   * `cmd/claim`: {nonce, proof, membership}. The membership (version ≥ 1, epoch = nonce) names the
   * owner and is signed by the owner's key; `proof` is HMAC(secret, owner key thumbprint, serial,
   * nonce). Throws coded errors; a wrong proof counts toward the lockout.
   */
  claim(
    p: { nonce: string; proof: string; membership: string },
    source = 'mqtt:claim',
  ): {
    owner: string;
    version: number;
    members: number;
  } {
    try {
      this.refuseUnlessClaimable();
      const left = this.lockout.remainingMs();
      if (left > 0)
        throw new LenscapError(
          'ERR_CLAIM_LOCKED',
          `too many wrong claim codes; try again in ${Math.ceil(left / 1000)} s`,
          {
            retryAfterSeconds: Math.ceil(left / 1000),
          },
        );
      const now = this.deps.clock.now();
      const until = this.nonces.get(p.nonce);
      // Single use: whatever happens next, this nonce is spent.
      this.nonces.delete(p.nonce);
      if (until === undefined || until <= now) {
        this.lockout.fail();
        throw new LenscapError('ERR_CLAIM_NONCE', 'claim nonce unknown, used or expired (ask for a new one)');
      }
      const secret = readClaimSecret(this.deps.paths);
      if (!secret)
        throw new LenscapError('ERR_CLAIM_NO_SECRET', 'this camera has no claim code (re-provision it)');
      const ownerJwk = claimedOwnerKey(p.membership);
      const jkt = jwkThumbprint(ownerJwk);
      if (!claimProofMatches(secret, { jkt, serial: this.deps.serial, nonce: p.nonce }, p.proof)) {
        const lock = this.lockout.fail();
        throw new LenscapError(
          'ERR_CLAIM_WRONG_PROOF',
          `claim proof does not match this camera's code${lock ? `; claiming locked for ${lock} s` : ''}`,
          { failures: this.lockout.failureCount, lockoutSeconds: lock },
        );
      }
      const membership = verifyMembership(p.membership, {
        serial: this.deps.serial,
        epoch: p.nonce,
        signer: ownerJwk,
      });
      if (membership.owner.jkt !== jkt)
        throw new LenscapError(
          'ERR_MEMBERSHIP_INVALID',
          'the claim membership must be signed by its own owner',
        );
      if (membership.version > MAX_MEMBERSHIP_VERSION)
        throw new LenscapError(
          'ERR_MEMBERSHIP_INVALID',
          `membership version above ${MAX_MEMBERSHIP_VERSION}`,
        );
      const floor = this.floorStore();
      const claimSeq = floor.nextClaim();
      const state: OwnerState = {
        format: 1,
        epoch: p.nonce,
        claimedAt: new Date(now).toISOString(),
        signer: { ...ownerJwk },
        membership: p.membership.trim(),
        floor: membership.version,
        claimSeq,
      };
      writeOwnerState(this.deps.paths, state);
      floor.record(claimSeq, membership.version);
      this.state = state;
      this.membership = membership;
      this.poisoned = false;
      this.lockout.succeed();
      this.nonces.clear();
      this.deps.logger.warn(
        { owner: membership.owner.sub, version: membership.version, source },
        'camera claimed by its owner',
      );
      this.emitEvent('owner_claimed', source, {
        version: membership.version,
        members: membership.members.length,
      });
      this.emit('change', membership);
      return { owner: membership.owner.sub, version: membership.version, members: membership.members.length };
    } catch (err) {
      this.refused('claim_refused', source, err);
      throw err;
    }
  }

  /** `cmd/membership`: a newer membership signed by the current owner (add, remove, transfer). */
  acceptMembership(
    jws: string,
    source = 'mqtt:membership',
  ): {
    version: number;
    owner: string;
    members: number;
    transferred: boolean;
  } {
    try {
      if (!this.state || !this.membership)
        throw new LenscapError(
          'ERR_MEMBERSHIP_NOT_CLAIMED',
          'camera has no owner: claim it with its code first',
        );
      const previous = this.membership;
      const floor = this.floorStore();
      const claimSeq = this.state.claimSeq ?? 1;
      const next = verifyMembership(jws, {
        serial: this.deps.serial,
        epoch: this.state.epoch,
        signer: previous.owner.jwk,
        minVersion: Math.max(this.state.floor, previous.version, floor.minVersion(claimSeq)),
      });
      if (next.version > MAX_MEMBERSHIP_VERSION)
        throw new LenscapError(
          'ERR_MEMBERSHIP_INVALID',
          `membership version above ${MAX_MEMBERSHIP_VERSION}`,
        );
      const state: OwnerState = {
        ...this.state,
        signer: { ...previous.owner.jwk },
        membership: jws.trim(),
        floor: next.version,
        claimSeq,
      };
      writeOwnerState(this.deps.paths, state);
      floor.record(claimSeq, next.version);
      this.state = state;
      this.membership = next;
      const transferred = next.owner.jkt !== previous.owner.jkt;
      this.deps.logger.warn(
        {
          version: next.version,
          previous: previous.version,
          members: next.members.length,
          transferred,
          source,
        },
        transferred ? 'ownership transferred by the owner' : 'membership updated by the owner',
      );
      this.emitEvent('membership_changed', source, {
        version: next.version,
        previous: previous.version,
        members: next.members.length,
        transferred,
      });
      this.emit('change', next);
      return { version: next.version, owner: next.owner.sub, members: next.members.length, transferred };
    } catch (err) {
      this.refused('membership_refused', source, err);
      throw err;
    }
  }

  /** Local factory reset (button or `lenscap reset`): no owner, no membership, at once. */
  reset(source: string): boolean {
    const had = clearOwnerState(this.deps.paths) || this.membership !== undefined;
    this.state = undefined;
    this.membership = undefined;
    this.poisoned = false;
    this.nonces.clear();
    this.lockout.succeed();
    this.deps.logger.warn({ source, hadOwner: had }, 'factory reset: owner cleared, camera unclaimed');
    this.emitEvent('owner_reset', source, { hadOwner: had });
    this.emit('reset');
    return had;
  }

  /** The floors store; a camera whose store could not be read at load is poisoned (never here). */
  private floorStore(): MembershipFloor {
    if (!this.floor)
      throw new LenscapError('ERR_OWNER_STATE_INVALID', 'version floor store unreadable: reset the camera');
    return this.floor;
  }

  private refuseUnlessClaimable(): void {
    if (this.deps.config.mode === 'legacy')
      throw new LenscapError(
        'ERR_CLAIM_DISABLED',
        'owner.mode is legacy: this camera is claimed by the cloud binding',
      );
    if (this.membership || this.poisoned)
      throw new LenscapError(
        'ERR_CLAIM_ALREADY_CLAIMED',
        'camera already has an owner: the owner transfers it, or a local reset clears it',
      );
  }

  private refused(type: 'claim_refused' | 'membership_refused', source: string, err: unknown): void {
    const code = isLenscapError(err) ? err.code : 'ERR_INTERNAL';
    this.deps.logger.warn({ code, source }, `${type.replace('_', ' ')}: ${(err as Error).message}`);
    this.emitRefusal(
      type,
      source,
      code,
      isLenscapError(err) && err.detail ? pickNumbers(err.detail) : undefined,
    );
  }

  /** A refused claim or membership: the reason is the error code from the room's closed list. */
  private emitRefusal(
    type: 'claim_refused' | 'membership_refused',
    source: string,
    reason: ErrorCode,
    data?: Record<string, unknown>,
  ): void {
    this.deps.events.emit({
      type,
      at: new Date(this.deps.clock.now()).toISOString(),
      serial: this.deps.serial,
      source,
      reason,
      ...(data ? { data } : {}),
    });
  }

  private emitEvent(
    type: 'owner_claimed' | 'membership_changed' | 'owner_reset',
    source: string,
    data?: Record<string, unknown>,
  ): void {
    this.deps.events.emit({
      type,
      at: new Date(this.deps.clock.now()).toISOString(),
      serial: this.deps.serial,
      source,
      ...(data ? { data } : {}),
    });
  }
}

/** The owner key a claim membership names (unverified here: the proof and the signature decide). */
function claimedOwnerKey(jws: string): SigningJwk {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = parseCompact(typeof jws === 'string' ? jws.trim() : '', 64 * 1024));
  } catch (err) {
    throw new LenscapError(
      'ERR_MEMBERSHIP_INVALID',
      `claim membership: ${err instanceof JwsError ? err.message : 'unreadable'}`,
    );
  }
  const members = Array.isArray(payload.members) ? (payload.members as unknown[]) : [];
  const owners = members.filter(
    (m): m is Record<string, unknown> =>
      typeof m === 'object' && m !== null && (m as { role?: unknown }).role === 'owner',
  );
  if (owners.length !== 1)
    throw new LenscapError(
      'ERR_MEMBERSHIP_INVALID',
      `claim membership names ${owners.length} owners, expected 1`,
    );
  try {
    return parseSigningJwk(owners[0]!.jwk, 'owner key');
  } catch (err) {
    throw new LenscapError('ERR_MEMBERSHIP_INVALID', `claim membership: ${(err as Error).message}`);
  }
}

function pickNumbers(detail: Record<string, unknown>): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(detail)) if (typeof v === 'number') out[k] = v;
  return Object.keys(out).length ? out : undefined;
}
