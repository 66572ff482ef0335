/**
 * The one session table and its cut policy: every live session — the gate's viewer sessions
 * (`kind: 'view'`) and the pushes to a relay (`kind: 'push'`), in one table composed by
 * agent/media.ts — is cut within 1 s of its grant's exp (a timer at exp plus a sweep against the
 * injected clock), when privacy turns on (`watchPrivacy`), on stream.stop for its jti
 * (`closeByJti`: the viewers and the push of that grant in one call), when its viewer leaves the
 * membership or the owner resets (`closeUnless`) and at shutdown (`closeAll`). A session's own
 * close() detaches it from the hub first, so no media byte follows the decision to cut.
 * Must never keep a session whose cut was decided, nor touch HTTP, MQTT, processes or media.
 */
import { unrefTimer, type Time, type TimerHandle } from '../clock.ts';
import type { PrivacySource } from '../privacy/state.ts';

export type CloseReason =
  | 'expired'
  | 'privacy_mode'
  | 'stream_stop'
  | 'client_gone'
  | 'slow_viewer'
  | 'hub_closed'
  | 'shutdown'
  | 'owner_reset'
  | 'not_a_member'
  /** Capture reported a failure (camera probe, ffmpeg exit) before the session's first keyframe. */
  | 'capture_failed'
  /** No first keyframe within gate.firstKeyframeTimeoutSeconds. */
  | 'no_media';

export type SessionKind = 'view' | 'push';

/** What the cut policy needs of any session: its grant (jti, sub, exp) and a close that detaches first. */
interface SessionBase {
  /** Unique in its table (`SessionTable.newId`). */
  id: number;
  kind: SessionKind;
  jti: string;
  /** The grant's viewer. */
  sub: string;
  /** Grant expiry, seconds since the epoch. */
  exp: number;
  startedAt: number;
  bytes: number;
  /** Detaches from the hub at once, then calls `remove(id)`; a second call does nothing. */
  close(reason: CloseReason): void;
}

/** A viewer at the gate. */
export interface ViewerSession extends SessionBase {
  kind: 'view';
  remote: string;
  transport: 'http' | 'ws';
}

/** A push to a relay (agent/push/). */
export interface PushSession extends SessionBase {
  kind: 'push';
  /** Host and app only (the relay URL may carry a stream key). */
  relay: string;
}

export type Session = ViewerSession | PushSession;

export class SessionTable {
  private readonly byId = new Map<number, Session>();
  private nextId = 1;
  private readonly timers = new Map<number, TimerHandle>();
  private sweeper: TimerHandle | undefined;
  readonly counters = { started: 0, closed: 0, expired: 0 };

  constructor(
    /** Expiry timers and the sweep run on it: a session ends at exp by this clock. */
    private readonly clock: Time,
    sweepMs = 250,
  ) {
    this.sweeper = clock.setInterval(() => this.sweep(), sweepMs);
    unrefTimer(this.sweeper);
  }

  /** Every session, viewers and pushes. */
  get size(): number {
    return this.byId.size;
  }

  /** Sessions of one kind (the gate's viewer limit counts viewers only). */
  count(kind: SessionKind): number {
    let n = 0;
    for (const s of this.byId.values()) if (s.kind === kind) n++;
    return n;
  }

  list(): Session[];
  list(kind: 'view'): ViewerSession[];
  list(kind: 'push'): PushSession[];
  list(kind?: SessionKind): Session[] {
    const all = [...this.byId.values()];
    return kind ? all.filter((s) => s.kind === kind) : all;
  }

  /** An id for a new session: the gate and push share the table, so neither counts on its own. */
  newId(): number {
    return this.nextId++;
  }

  add(s: Session): void {
    this.byId.set(s.id, s);
    this.counters.started++;
    const ms = s.exp * 1000 - this.clock.now();
    const t = this.clock.setTimeout(() => this.expire(s), Math.max(0, ms));
    unrefTimer(t);
    this.timers.set(s.id, t);
  }

  /** Called by a session when it ends, whatever the reason. */
  remove(id: number): void {
    const t = this.timers.get(id);
    if (t !== undefined) this.clock.clearTimeout(t);
    this.timers.delete(id);
    if (this.byId.delete(id)) this.counters.closed++;
  }

  /** stream.stop: cuts every session of that grant, viewers and push alike; returns them. */
  closeByJti(jti: string): Session[] {
    const hit = this.list().filter((s) => s.jti === jti);
    for (const s of hit) s.close('stream_stop');
    return hit;
  }

  /** Cuts the sessions whose viewer no longer passes `keep` (a membership without them, a reset). */
  closeUnless(keep: (s: Session) => boolean, reason: CloseReason): number {
    const hit = this.list().filter((s) => !keep(s));
    for (const s of hit) s.close(reason);
    return hit.length;
  }

  /**
   * Privacy on cuts every session (`privacy_mode`); `onCut` hears how many. Returns the unwatch.
   */
  watchPrivacy(privacy: PrivacySource, onCut?: (closed: number) => void): () => void {
    const onChange = (on: boolean) => {
      if (!on) return;
      const n = this.closeAll('privacy_mode');
      if (n) onCut?.(n);
    };
    privacy.on('change', onChange);
    return () => privacy.off('change', onChange);
  }

  /** Cuts every session, or every session of one kind (the gate and push each end their own at stop). */
  closeAll(reason: CloseReason, kind?: SessionKind): number {
    const all = this.list().filter((s) => !kind || s.kind === kind);
    for (const s of all) s.close(reason);
    return all.length;
  }

  private expire(s: Session): void {
    if (!this.byId.has(s.id)) return;
    this.counters.expired++;
    s.close('expired');
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const s of this.list()) if (s.exp * 1000 <= now) this.expire(s);
  }

  stop(): void {
    if (this.sweeper !== undefined) this.clock.clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const t of this.timers.values()) this.clock.clearTimeout(t);
  }
}
