/**
 * The one session table and its cut policy: every live session (viewer sessions of the gate
 * today; push sessions are to join it) is cut within 1 s of its grant's exp (a timer at exp plus a
 * sweep against the injected clock), when privacy turns on (`watchPrivacy`), on stream.stop for its
 * jti (`closeByJti`), when its viewer leaves the membership (`closeUnless`) and at shutdown
 * (`closeAll`). A session's own close() detaches it from the hub first, so no media byte follows
 * the decision to cut.
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

export interface ViewerSession {
  id: number;
  jti: string;
  sub: string;
  /** Grant expiry, seconds since the epoch. */
  exp: number;
  remote: string;
  transport: 'http' | 'ws';
  startedAt: number;
  bytes: number;
  close(reason: CloseReason): void;
}

export class SessionTable {
  private readonly byId = new Map<number, ViewerSession>();
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

  get size(): number {
    return this.byId.size;
  }

  list(): ViewerSession[] {
    return [...this.byId.values()];
  }

  add(s: ViewerSession): void {
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

  closeByJti(jti: string): number {
    const hit = this.list().filter((s) => s.jti === jti);
    for (const s of hit) s.close('stream_stop');
    return hit.length;
  }

  /** Cuts the sessions whose viewer no longer passes `keep` (a membership without them). */
  closeUnless(keep: (s: ViewerSession) => boolean, reason: CloseReason): number {
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

  closeAll(reason: CloseReason): number {
    const all = this.list();
    for (const s of all) s.close(reason);
    return all.length;
  }

  private expire(s: ViewerSession): void {
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
