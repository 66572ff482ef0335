/**
 * The membership's version floor, kept in the camera's one floors store (trust/floors.json,
 * storage/version-floors.ts) beside the trust bundle's and the binding's — not only in
 * owner/state.json — so putting back an older copy of the owner state file cannot bring back an
 * older membership (a removed viewer) or an earlier claim's owner. Versions restart at 1 with every
 * claim (a reset and a new claim) while a floor never goes down, so the store keeps two kinds:
 *   owner_claim  the number of the latest claim this camera accepted (1, 2, …)
 *   membership   claim number × 2^32 + version of the newest membership installed
 * A camera whose state predates this (no `claimSeq`, no `membership` floor) is migrated at load:
 * its state file's own floor raises the store's.
 * Must never lower a floor, and never let an installed state below the floor count as the owner.
 */
import { LenscapError } from '../errors.ts';
import type { StateLayout } from '../state-layout.ts';
import { VersionFloors } from '../storage/version-floors.ts';

export const MEMBERSHIP_KIND = 'membership';
export const CLAIM_KIND = 'owner_claim';
const SPAN = 2 ** 32;
/** Versions above this cannot be floored per claim (the store keeps safe integers). */
export const MAX_MEMBERSHIP_VERSION = SPAN - 1;

export class MembershipFloor {
  private constructor(private readonly floors: VersionFloors) {}

  /** Throws ERR_VERSION_FLOORS_INVALID on an unreadable floor file (the caller fails closed). */
  static open(paths: StateLayout): MembershipFloor {
    return new MembershipFloor(VersionFloors.open(paths.versionFloors));
  }

  private floor(): { claim: number; version: number } | undefined {
    const f = this.floors.get(MEMBERSHIP_KIND);
    return f === undefined ? undefined : { claim: Math.floor(f / SPAN), version: f % SPAN };
  }

  /**
   * At load: the installed (claim, version) must not be below the floor (ERR_MEMBERSHIP_ROLLBACK);
   * then the store is raised to it (the migration from the state file's own floor).
   */
  checkInstalled(claim: number, version: number): void {
    const f = this.floor();
    if (f && (claim < f.claim || (claim === f.claim && version < f.version)))
      throw new LenscapError(
        'ERR_MEMBERSHIP_ROLLBACK',
        `owner state holds claim ${claim} membership v${version}, below the floor (claim ${f.claim} v${f.version}): an older copy of owner/state.json`,
        { claim, version, floorClaim: f.claim, floorVersion: f.version },
      );
    this.record(claim, version);
  }

  /** The number the next claim of this camera gets. */
  nextClaim(): number {
    return Math.max(this.floors.get(CLAIM_KIND) ?? 0, this.floor()?.claim ?? 0) + 1;
  }

  /** The version a new membership of claim `claim` must exceed. */
  minVersion(claim: number): number {
    const f = this.floor();
    return f && f.claim === claim ? f.version : 0;
  }

  /** Raises both floors after the state file was written (a crash between leaves the floor lower, never higher than what is on disk). */
  record(claim: number, version: number): void {
    if (!Number.isSafeInteger(version) || version < 1 || version > MAX_MEMBERSHIP_VERSION)
      throw new LenscapError(
        'ERR_MEMBERSHIP_INVALID',
        `membership version must be 1..${MAX_MEMBERSHIP_VERSION}`,
      );
    this.floors.raise(CLAIM_KIND, claim);
    this.floors.raise(MEMBERSHIP_KIND, claim * SPAN + version);
  }
}
