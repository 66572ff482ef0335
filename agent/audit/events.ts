/**
 * The shape of a security event: what the camera tells the cloud (and its own audit log) when
 * something security-relevant happens. Stable: the cloud's alarms parse it.
 * Must never carry a whole token, a key or a certificate.
 */
import type { ErrorCode } from '../errors.ts';
import type { RefusalReason } from '../grants/reasons.ts';

export const SECURITY_EVENT_TYPES = [
  'grant_refused',
  'command_refused',
  'binding_changed',
  'trust_updated',
  'identity_renewed',
  'privacy_changed',
  'events_dropped',
  'claim_refused',
  'owner_claimed',
  'membership_changed',
  'membership_refused',
  'owner_reset',
  /** A motion event was detected but not recorded (reason: its ERR_EVENTS_* code, e.g. no viewer key). */
  'motion_not_recorded',
  'artifacts_dropped',
] as const;
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];

/** Fields every security event carries. */
interface EventBase {
  /** ISO 8601 time of the decision on the camera. */
  at: string;
  /** This camera's serial. */
  serial: string;
  /** Where the attempt came from: `gate:<addr>`, `mqtt:<op>`, `state:<file>`, `local:<input>`. */
  source?: string;
  jti?: string;
  sub?: string;
  /** Small, type-specific facts (versions, counts). Never secrets. */
  data?: Record<string, unknown>;
}

/** Refusals whose reason is an error code from a room's closed list. */
export type CodedRefusalType =
  'command_refused' | 'claim_refused' | 'membership_refused' | 'motion_not_recorded';

/**
 * A security event, keyed by `type`: a grant refusal carries one of the closed refusal reasons
 * (and, on `wrong_audience`, the audience the grant claimed: the cloud's misroute alarm); a coded
 * refusal carries the error code of its room; every other type carries no reason.
 */
/** Why the upload queue dropped artifacts (its bounds, or a spooled file that no longer matches). */
export type ArtifactDropReason = 'bytes' | 'count' | 'free_space' | 'too_large' | 'file_mismatch';

export type SecurityEvent =
  | (EventBase & { type: 'grant_refused'; reason: RefusalReason; claimedAud?: string })
  | (EventBase & { type: 'artifacts_dropped'; reason: ArtifactDropReason; claimedAud?: never })
  | (EventBase & { type: CodedRefusalType; reason: ErrorCode; claimedAud?: never })
  | (EventBase & {
      type: Exclude<SecurityEventType, 'grant_refused' | 'artifacts_dropped' | CodedRefusalType>;
      reason?: never;
      claimedAud?: never;
    });

/**
 * How hard a queued event holds on when the bounded queue must drop one: the oldest event of the
 * lowest class present goes first, so junk never pushes out what matters.
 * - `junk`: what anyone can cause without a valid signature (unsigned grant refusals).
 * - `normal`: the default; flood summaries, command refusals, privacy changes.
 * - `critical`: the cloud's own word refused (signed grant refusals: the misroute alarm above
 *   all) and identity/trust/binding/ownership events.
 */
export type EventClass = 'junk' | 'normal' | 'critical';

const CRITICAL_TYPES: ReadonlySet<string> = new Set([
  'binding_changed',
  'trust_updated',
  'identity_renewed',
  'claim_refused',
  'owner_claimed',
  'membership_changed',
  'membership_refused',
  'owner_reset',
]);

/** The class of an event whose emitter did not say: identity/trust kinds are critical. */
export function defaultEventClass(event: SecurityEvent): EventClass {
  return CRITICAL_TYPES.has(event.type) ? 'critical' : 'normal';
}

/** Where security events go. The cloud link's on-disk queue implements it; tests collect. */
export interface EventSink {
  /** `cls` overrides the type's default class (the grant gate knows whether a signature held). */
  emit(event: SecurityEvent, cls?: EventClass): void;
}

export class MemoryEventSink implements EventSink {
  readonly events: SecurityEvent[] = [];
  private waiters: Array<() => void> = [];
  /** The class each event was emitted with (parallel to `events`). */
  readonly classes: EventClass[] = [];
  emit(event: SecurityEvent, cls?: EventClass): void {
    this.events.push(event);
    this.classes.push(cls ?? defaultEventClass(event));
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves when the next event arrives (tests). */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
