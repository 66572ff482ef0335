/**
 * Push mode (camera behind NAT → cloud relay): `start(grant)` verifies the grant through the same
 * grant gate as a viewer (purpose `push`), looks up the grant viewer's HPKE key in the owner-signed
 * membership (never a key from the grant or the cloud), then seals the hub's FLV frame by frame
 * (agent/sealing/) and publishes the sealed tags over RTMP itself (./rtmp/client.ts) to the relay
 * URL carried INSIDE the signed grant — a misrouted or forged command cannot redirect video, and a
 * misrouting relay hands out ciphertext only the bound viewer opens. No ffmpeg in this path: it
 * cannot publish a stream whose slices it cannot decode (docs/streaming.md). Each push is a
 * session (`kind: 'push'`) in the one session table (agent/sessions/), shared with the gate's
 * viewers: the table's cut policy ends it — exp by the injected clock, privacy on, stream.stop by
 * jti, its viewer leaving the membership, owner reset, shutdown — and exp is checked again before
 * every chunk. A relay hiccup is retried until then (same sealed session, the counter keeps rising).
 * Must never push to a URL that did not come from an accepted grant, nor push a coded frame unsealed.
 */
import type { Activity } from '../stream/activity.ts';
import { unrefTimer, type Time, type TimerHandle } from '../clock.ts';
import {
  commandSource,
  type CommandOrigin,
  type Decision,
  type DecisionContext,
  type GrantGate,
} from '../grants/types.ts';
import type { RefusalReason } from '../grants/reasons.ts';
import type { Logger } from '../log.ts';
import type { FlvSink } from '../stream/media-hub.ts';
import { openRtmp, type RtmpClient, type RtmpClientOptions } from './rtmp/client.ts';
import { relayRefusal } from '../grants/verify.ts';
import { redactText, redactUrl, registerUrlSecrets } from '../redact.ts';
import { createFrameSealer, type FrameSealer } from '../sealing/sealer.ts';
import { flvSealingTags } from '../sealing/flv-sealer.ts';
import { isKeyVideo, isSealableVideo } from '../sealing/frame.ts';
import type { ViewerKeySource } from '../sealing/viewer-keys.ts';
import type { PrivacySource } from '../privacy/state.ts';
import { SessionTable, type CloseReason, type PushSession } from '../sessions/table.ts';

export interface PushDeps {
  serial: string;
  grants: GrantGate & {
    reportRefusal?(
      reason: RefusalReason,
      ctx: DecisionContext,
      detail: string,
      about?: { jti: string; sub: string },
    ): void;
  };
  stream: { acquire(): () => void; attach(sink: FlvSink): () => void };
  /** Unused since push publishes RTMP itself (kept so existing callers compile). */
  ffmpegPath?: string;
  /** The RTMP publisher (tests may wrap it); default ./rtmp/client.ts. */
  publish?: (o: RtmpClientOptions) => RtmpClient;
  /** URL prefixes; empty = any rtmp(s) URL in a signed grant. */
  relayAllowList: readonly string[];
  /** exp checks, the table's expiry cut (when push keeps its own) and the relay retry run on it. */
  clock: Time;
  logger: Logger;
  activity?: Activity;
  /**
   * The session table shared with the gate (agent/media.ts), whose owner watches privacy and
   * stops it: its cut policy ends pushes and viewers alike, and stream.stop cuts both. Without it
   * push keeps a table of its own and watches `privacy` on it.
   */
  sessions?: SessionTable;
  /**
   * Only without a shared table: privacy on stops every push (capture stops too; a push must not
   * linger with its light on).
   */
  privacy?: PrivacySource;
  /** Delay before retrying a failed push (ms). */
  retryMs?: number;
  /** The owner-signed membership's viewer keys: a push seals to `hpkeKeyFor(grant.sub)` or does not start. */
  viewerKeys: ViewerKeySource;
  /** Prepare a new content key after this many frames (default: no frame bound). */
  rotateAfterFrames?: number;
  /** …or after this long under one key (default SEAL_ROTATE_MS in agent/sealing/sealer.ts; 0 = none). */
  rotateAfterMs?: number;
  /** …or after this many plaintext bytes under one key (default SEAL_ROTATE_BYTES; 0 = none). */
  rotateAfterBytes?: number;
}

export type PushStartResult =
  | { ok: true; jti: string; exp: number; relay: string }
  | { ok: false; code: 'ERR_GRANT_REFUSED'; reason: RefusalReason; detail: string }
  | { ok: false; code: 'ERR_PUSH_ACTIVE'; reason: 'replayed'; detail: string };

export interface PushStopResult {
  ok: true;
  jti: string;
  pushStopped: boolean;
  sessionsClosed: number;
}

export interface ActivePush {
  jti: string;
  sub: string;
  /** The membership key id the session is sealed to. */
  sealedTo: string;
  /** The sealed session's id (hex), as every keyframe's envelope carries it in the clear. */
  sealedSession: string;
  exp: number;
  /** Host and path only: the relay URL may carry a stream key. */
  relay: string;
  startedAt: number;
  attempts: number;
  bytes: number;
}

/** A push as it sits in the session table, with what `active()` reports of it. */
interface PushJob extends PushSession {
  sealedTo: string;
  sealedSession: string;
  attempts: number;
  /** Settles once the relay connection is closed and the lease released, after a cut. */
  done: Promise<void>;
}

/** The default origin of a push: the cloud link's `cmd/stream.start`. */
const STREAM_START: CommandOrigin = { via: 'mqtt', op: 'stream.start' };

/**
 * A relay URL for logs, replies and events: scheme, host, port and the app only (agent/redact.ts);
 * a stream key may sit in the query, the userinfo or the path after the app.
 */
export function describeRelay(url: string): string {
  return redactUrl(url);
}

/**
 * Defence in depth after the grant decision: the same rule as the grant pipeline (one place,
 * agent/grants/verify.ts), so the push side cannot drift into a weaker prefix match.
 */
export function relayAllowed(url: string, allow: readonly string[]): boolean {
  return relayRefusal(url, allow) === undefined;
}

export class PushService {
  /**
   * This service's pushes by jti, from the start until the relay connection is closed (the table
   * drops one the moment its cut is decided; `active()` and ERR_PUSH_ACTIVE see it until it is gone).
   */
  private readonly jobs = new Map<string, PushJob>();
  private readonly sessions: SessionTable;
  private readonly ownTable: boolean;
  private readonly unwatchPrivacy: () => void;
  readonly counters = { started: 0, refused: 0, stopped: 0, failures: 0, framesSealed: 0, framesDropped: 0 };

  constructor(private readonly deps: PushDeps) {
    this.ownTable = !deps.sessions;
    this.sessions = deps.sessions ?? new SessionTable(deps.clock);
    this.unwatchPrivacy =
      this.ownTable && deps.privacy
        ? this.sessions.watchPrivacy(deps.privacy, (n) =>
            deps.logger.warn({ pushes: n }, 'privacy on: every push stopped'),
          )
        : () => undefined;
  }

  active(): ActivePush[] {
    return [...this.jobs.values()].map((j) => ({
      jti: j.jti,
      sub: j.sub,
      sealedTo: j.sealedTo,
      sealedSession: j.sealedSession,
      exp: j.exp,
      relay: j.relay,
      startedAt: j.startedAt,
      attempts: j.attempts,
      bytes: j.bytes,
    }));
  }

  /**
   * `dpop`: owner-held mode's proof of the grant's key, made over htm `PUSH` and htu
   * `urn:lenscap:push:<serial>` (the command has no URL of its own). `command`: where the grant
   * came from, typed (default `cmd/stream.start` over MQTT).
   */
  async start(
    grant: string | undefined,
    opts: { dpop?: string; command?: CommandOrigin } = {},
  ): Promise<PushStartResult> {
    const command = opts.command ?? STREAM_START;
    const dpop = opts.dpop;
    const ctx: DecisionContext = {
      source: commandSource(command),
      command,
      purpose: 'push',
      proof: { dpop, htm: 'PUSH', htu: `urn:lenscap:push:${this.deps.serial}` },
    };
    let d: Decision;
    try {
      d = await this.deps.grants.decide(grant, ctx);
    } catch (err) {
      // The grant gate promises not to throw; if it does, that is a refusal and the camera's fault.
      const detail = `grant gate threw: ${(err as Error).message}`;
      this.deps.grants.reportRefusal?.('internal', ctx, detail);
      d = { ok: false, reason: 'internal', detail };
    }
    if (!d.ok) {
      this.counters.refused++;
      return { ok: false, code: 'ERR_GRANT_REFUSED', reason: d.reason, detail: d.detail };
    }
    const { claims } = d;
    // The grant gate checks these for purpose push; checked again because this is where video leaves.
    if (
      claims.aud !== this.deps.serial ||
      !claims.relay ||
      !relayAllowed(claims.relay, this.deps.relayAllowList)
    ) {
      this.counters.refused++;
      const detail = !claims.relay ? 'grant has no relay claim' : 'relay URL not allowed';
      this.deps.grants.reportRefusal?.('relay_not_allowed', ctx, detail);
      return { ok: false, code: 'ERR_GRANT_REFUSED', reason: 'relay_not_allowed', detail };
    }
    // exp is a hard edge by the camera's clock (the decision may have taken its time).
    if (this.deps.clock.now() >= claims.exp * 1000) {
      this.counters.refused++;
      const detail = 'grant expired before the push started';
      this.deps.grants.reportRefusal?.('expired', ctx, detail);
      return { ok: false, code: 'ERR_GRANT_REFUSED', reason: 'expired', detail };
    }
    if (this.jobs.has(claims.jti))
      return {
        ok: false,
        code: 'ERR_PUSH_ACTIVE',
        reason: 'replayed',
        detail: 'a push for this jti is running',
      };
    // Sealing needs the viewer's key from the owner-signed membership; without it nothing leaves.
    const viewerKey = this.deps.viewerKeys.hpkeKeyFor(claims.sub);
    let sealer: FrameSealer | undefined;
    let why = 'no key for this viewer in the membership';
    if (viewerKey)
      try {
        sealer = await createFrameSealer({
          serial: this.deps.serial,
          viewer: viewerKey,
          now: () => this.deps.clock.now(),
          ...(this.deps.rotateAfterFrames ? { rotateAfterFrames: this.deps.rotateAfterFrames } : {}),
          ...(this.deps.rotateAfterMs !== undefined ? { rotateAfterMs: this.deps.rotateAfterMs } : {}),
          ...(this.deps.rotateAfterBytes !== undefined
            ? { rotateAfterBytes: this.deps.rotateAfterBytes }
            : {}),
        });
      } catch (err) {
        why = `viewer key unusable: ${(err as Error).message}`;
      }
    if (!sealer) {
      this.counters.refused++;
      this.deps.grants.reportRefusal?.('viewer_key_missing', ctx, why, { jti: claims.jti, sub: claims.sub });
      return { ok: false, code: 'ERR_GRANT_REFUSED', reason: 'viewer_key_missing', detail: why };
    }
    if (this.jobs.has(claims.jti))
      return {
        ok: false,
        code: 'ERR_PUSH_ACTIVE',
        reason: 'replayed',
        detail: 'a push for this jti is running',
      };
    this.counters.started++;
    const job = this.launch(claims.jti, claims.sub, claims.exp, claims.relay, sealer);
    return { ok: true, jti: claims.jti, exp: claims.exp, relay: job.relay };
  }

  /**
   * `cmd/stream.stop`: one cut through the table ends that grant's push and, with the shared table,
   * its viewer sessions at the gate (`sessionsClosed` counts those).
   */
  async stop(jti: string): Promise<PushStopResult> {
    const job = this.jobs.get(jti);
    const cut = this.sessions.closeByJti(jti);
    if (job) await job.done;
    return { ok: true, jti, pushStopped: !!job, sessionsClosed: cut.filter((s) => s.kind === 'view').length };
  }

  /** Shutdown: every push is cut (`shutdown`); a shared table's viewers are the gate's to end. */
  async close(): Promise<void> {
    this.unwatchPrivacy();
    for (const j of this.jobs.values()) j.close('shutdown');
    await Promise.all([...this.jobs.values()].map((j) => j.done));
    if (this.ownTable) this.sessions.stop();
  }

  private launch(jti: string, sub: string, exp: number, relayUrl: string, sealer: FrameSealer): PushJob {
    // ffmpeg echoes the output URL in its errors, in any spelling: its key parts are cut wherever
    // they show up from now on, not only where describeRelay is called.
    registerUrlSecrets(relayUrl);
    const log = this.deps.logger.child({ module: 'push', jti, relay: describeRelay(relayUrl) });
    const endActivity = this.deps.activity?.begin();
    const release = this.deps.stream.acquire();
    let stopped = false;
    let run: RtmpClient | undefined;
    let detach: (() => void) | undefined;
    let retry: TimerHandle | undefined;
    let resolveDone!: () => void;

    const job: PushJob = {
      id: this.sessions.newId(),
      kind: 'push',
      jti,
      sub,
      sealedTo: sealer.kid,
      sealedSession: Buffer.from(sealer.sessionId).toString('hex'),
      exp,
      relay: describeRelay(relayUrl),
      startedAt: this.deps.clock.now(),
      attempts: 0,
      bytes: 0,
      done: new Promise<void>((r) => (resolveDone = r)),
      // The table's cut (or the exp check before a chunk, or the hub's end): the tap is detached
      // and the job leaves the table at once, synchronously; the relay connection closes after.
      close: (reason: CloseReason) => {
        if (stopped) return;
        stopped = true;
        if (retry !== undefined) this.deps.clock.clearTimeout(retry);
        detach?.();
        this.sessions.remove(job.id);
        void (async () => {
          await run?.close();
          release();
          endActivity?.();
          this.jobs.delete(jti);
          this.counters.stopped++;
          log.info({ reason, bytes: job.bytes }, 'push stopped');
          resolveDone();
        })();
      },
    };

    const attempt = () => {
      if (stopped) return;
      job.attempts++;
      const client = (this.deps.publish ?? openRtmp)({ url: relayUrl, role: 'publish', timeoutMs: 10_000 });
      // Timestamps start at the first coded frame, as ffmpeg's copy did: the hub's clock is the
      // capture's, and a relay's player should not start at minutes.
      let base: number | undefined;
      // After a drop under back-pressure, inter frames are useless until the next keyframe.
      let skipping = false;
      const sealing = flvSealingTags(
        sealer,
        () => undefined,
        (tag) => {
          const raw = ((tag.ts[3]! << 24) | tag.ts.readUIntBE(0, 3)) >>> 0;
          const coded = tag.type === 9 && isSealableVideo(tag.body);
          if (coded && base === undefined) base = raw;
          if (coded) {
            if (skipping && !isKeyVideo(tag.body)) return void this.counters.framesDropped++;
            skipping = client.bufferedBytes() > 8 << 20;
            if (skipping) return void this.counters.framesDropped++;
          }
          job.bytes += tag.body.length + 15;
          client.sendTag({
            type: tag.type,
            timestamp: base === undefined ? 0 : Math.max(0, raw - base),
            body: tag.body,
          });
        },
      );
      let broken = false;
      // Each attempt gets a fresh tap: FLV header, sequence header and GOP first.
      detach = this.deps.stream.attach({
        write: (chunk) => {
          if (stopped || broken) return;
          // Before every chunk, the first above all (header + cached GOP arrive at attach): no
          // media byte goes towards the relay at or after exp, whatever the expiry timer does.
          if (this.deps.clock.now() >= exp * 1000) return job.close('expired');
          const before = sealing.counters.sealed;
          try {
            sealing.write(chunk);
          } catch (err) {
            // A broken FLV stream: stop feeding this attempt rather than forward anything unparsed.
            broken = true;
            log.error({ code: 'ERR_PUSH_SEAL', err: (err as Error).message }, 'push: stream not sealable');
            void client.close();
          }
          this.counters.framesSealed += sealing.counters.sealed - before;
        },
        end: () => job.close('hub_closed'),
      });
      if (stopped) {
        // Stopped from inside attach (exp reached on the cached GOP): detach is only known now.
        detach();
        void client.close();
        return;
      }
      run = client;
      void client.closed.then((x) => {
        detach?.();
        if (stopped) return;
        this.counters.failures++;
        log.warn(
          { code: 'ERR_PUSH_EXITED', cause: x.code, err: x.error && redactText(x.error) },
          'push to the relay ended; retrying until the grant expires',
        );
        retry = this.deps.clock.setTimeout(attempt, this.deps.retryMs ?? 1000);
        unrefTimer(retry);
      });
    };
    // In the table before the first attempt: a cut decided from inside attach (exp on the cached
    // GOP) already finds it there.
    this.jobs.set(jti, job);
    this.sessions.add(job);
    log.info({ exp }, 'push started');
    attempt();
    return job;
  }
}

export function createPushService(deps: PushDeps): PushService {
  return new PushService(deps);
}
