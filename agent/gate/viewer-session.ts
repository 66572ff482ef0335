/**
 * One accepted viewer's session: it takes a stream lease and an activity count, attaches a tap to
 * the hub and forwards the tap's FLV (sealed with `gate.seal`) to the viewer's link. The link's
 * head waits for the first keyframe: a session cut before it (capture failing twice in a row, no
 * keyframe within gate.firstKeyframeTimeoutSeconds, exp, privacy …) answers with a coded JSON
 * error instead; after it, the cut hangs up. `exp` is checked before every chunk.
 * Must never write a byte after the cut was decided, nor a byte at or past `exp`.
 */
import { unrefTimer, type TimerHandle } from '../clock.ts';
import type { GrantClaims } from '../grants/types.ts';
import type { Logger } from '../log.ts';
import { flvSealingWriter } from '../sealing/flv-sealer.ts';
import type { FrameSealer } from '../sealing/sealer.ts';
import { classifyChunk } from './first-keyframe.ts';
import type { CloseReason, SessionTable, ViewerSession } from '../sessions/table.ts';
import type { GateCounters, GateDeps, ViewerLink } from './types.ts';

/**
 * Capture failures in a row that answer a waiting viewer `capture_failed`: one exit after a good
 * run is restarted within a few hundred ms and the viewer gets its keyframe; a camera whose probe
 * fails again (or whose ffmpeg exits again) is not coming back soon.
 */
const FAILURES_BEFORE_ANSWER = 2;
/** Header, metadata and sequence headers held before the first keyframe: a few hundred bytes in practice. */
const MAX_HELD_BYTES = 256 * 1024;

/**
 * The status a session cut before its first keyframe answers with, or undefined when there is
 * nobody to answer (the viewer left) and the link just hangs up.
 */
function answerStatus(reason: CloseReason): number | undefined {
  switch (reason) {
    case 'client_gone':
    case 'slow_viewer':
      return undefined;
    case 'capture_failed':
    case 'no_media':
    case 'hub_closed':
    case 'shutdown':
      return 503;
    default:
      return 403;
  }
}

export interface SessionStarterDeps {
  gate: Pick<GateDeps, 'config' | 'stream' | 'clock' | 'activity'>;
  sessions: SessionTable;
  counters: GateCounters;
  log: Logger;
}

export type StartSession = (
  claims: GrantClaims,
  sealer: FrameSealer | undefined,
  remote: string,
  link: ViewerLink,
) => ViewerSession;

export function createSessionStarter(d: SessionStarterDeps): StartSession {
  const { gate: deps, sessions, counters, log } = d;
  const pastExp = (s: { exp: number }) => deps.clock.now() >= s.exp * 1000;

  return function startSession(claims, sealer, remote, link) {
    let detach: (() => void) | undefined;
    let release: (() => void) | undefined;
    let endActivity: (() => void) | undefined;
    let unwatchCapture: (() => void) | undefined;
    let waitTimer: TimerHandle | undefined;
    let closed = false;
    let opened = false;
    /** Header, metadata and sequence headers held until the first keyframe. */
    let held: Buffer[] = [];
    let heldBytes = 0;
    let captureCode: string | undefined;
    const stopWaiting = () => {
      unwatchCapture?.();
      unwatchCapture = undefined;
      if (waitTimer !== undefined) deps.clock.clearTimeout(waitTimer);
      waitTimer = undefined;
    };
    const session: ViewerSession = {
      id: sessions.newId(),
      kind: 'view',
      jti: claims.jti,
      sub: claims.sub,
      exp: claims.exp,
      remote,
      transport: link.transport,
      startedAt: deps.clock.now(),
      bytes: 0,
      close(reason) {
        if (closed) return;
        closed = true;
        // Detach first: nothing more is written once the cut is decided.
        detach?.();
        stopWaiting();
        held = [];
        release?.();
        endActivity?.();
        sessions.remove(session.id);
        counters.closedByReason[reason] = (counters.closedByReason[reason] ?? 0) + 1;
        log.info(
          {
            session: session.id,
            jti: session.jti,
            sub: session.sub,
            reason,
            bytes: session.bytes,
            ...(opened ? {} : { beforeMedia: true }),
            ...(captureCode && !opened ? { code: captureCode } : {}),
          },
          'viewer session closed',
        );
        const status = opened ? undefined : answerStatus(reason);
        if (status === undefined) return link.hangUp(reason);
        link.answer(status, { error: reason, ...(captureCode ? { code: captureCode } : {}) });
      },
    };
    sessions.add(session);
    counters.accepted++;
    // Watched before the lease: the lease may start capture, and its failures must be seen.
    unwatchCapture = deps.stream.onCaptureFailed?.((f) => {
      if (closed || opened) return;
      captureCode = f.code;
      if ((f.consecutive ?? FAILURES_BEFORE_ANSWER) < FAILURES_BEFORE_ANSWER) return;
      session.close('capture_failed');
    });
    waitTimer = deps.clock.setTimeout(() => {
      if (closed || opened) return;
      captureCode = deps.stream.captureError?.()?.code;
      session.close('no_media');
    }, deps.config.firstKeyframeTimeoutSeconds * 1000);
    unrefTimer(waitTimer);
    endActivity = deps.activity?.begin();
    release = deps.stream.acquire();
    log.info(
      {
        session: session.id,
        jti: claims.jti,
        sub: claims.sub,
        exp: claims.exp,
        remote,
        transport: link.transport,
      },
      'viewer session started',
    );
    const out = (chunk: Buffer) => {
      if (closed) return;
      session.bytes += chunk.length;
      counters.bytesOut += chunk.length;
      if (!link.send(chunk)) session.close('slow_viewer');
    };
    const sealing = sealer ? flvSealingWriter(sealer, out) : undefined;
    const forward = (chunk: Buffer) => {
      if (closed) return;
      if (!sealing) return out(chunk);
      try {
        sealing.write(chunk);
      } catch {
        // Not parseable as FLV: nothing unsealed may leave, so the session ends.
        session.close('hub_closed');
      }
    };
    detach = deps.stream.attach({
      write(chunk) {
        if (closed) return;
        // Checked before every chunk, the first one above all (the hub writes the FLV header and
        // the cached GOP the moment we attach): timers and sweeps only ever come after the edge.
        if (pastExp(session)) return session.close('expired');
        if (!opened) {
          const kind = classifyChunk(chunk);
          // Inter frames before the first keyframe cannot be decoded: never held, never sent.
          if (kind === 'frame') return;
          if (kind === 'other') {
            if (heldBytes + chunk.length <= MAX_HELD_BYTES) {
              held.push(chunk);
              heldBytes += chunk.length;
            }
            return;
          }
          opened = true;
          stopWaiting();
          if (!link.open()) return session.close('client_gone');
          const before = held;
          held = [];
          for (const c of before) forward(c);
        }
        forward(chunk);
      },
      end() {
        session.close('hub_closed');
      },
    });
    // A session closed from inside attach (exp, slow viewer) ran close() before detach existed.
    if (closed) detach();
    return session;
  };
}
