/**
 * The camera's event side as one service (issue 16): while events are on and privacy is off it
 * holds a capture lease, taps the hub's FLV, keeps the pre-roll ring, runs the low-rate gray
 * analysis ffmpeg and the motion decisions; on a trigger it takes a JPEG snapshot and records a
 * clip (pre-roll + motion + post-roll, capped), seals each to every viewer key of the
 * owner-signed membership captured at the trigger, spools it crash-safe and hands it to the
 * ArtifactSink. Events off: no analysis process, no lease, no tap.
 * Privacy on (soft or switch) stops detection and recording at once: the analysis process is
 * killed, a clip in progress and snapshots in flight are discarded, the ring is cleared.
 * Must never record without a viewer key (ERR_EVENTS_NO_VIEWER_KEYS + `motion_not_recorded`),
 * write an artifact that began before privacy turned on, nor reach into the gate.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { EventSink } from '../audit/events.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { isLenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { FlvTagReader, encodeTag } from '../sealing/flv-tags.ts';
import type { FlvSink } from '../stream/media-hub.ts';
import type { PrivacySource } from '../privacy/state.ts';
import { FrameAnalysis } from './analysis.ts';
import type { ArtifactKind, ArtifactSink } from './artifact.ts';
import { ClipRecorder } from './clip.ts';
import type { EventsCode } from './codes.ts';
import { FLV_VIDEO_HEADER } from './flv-out.ts';
import { MotionDetector } from './motion.ts';
import { GopRing, tagTimeMs, type RingTag } from './ring.ts';
import { startSnapshot } from './snapshot.ts';
import { sealToSpool, type MembershipKeySource, type MembershipKeys } from './spool.ts';

/** What the events room needs of the stream service (structural: tests hand a small fake hub). */
export interface EventsStream {
  acquire(): () => void;
  attach(sink: FlvSink): () => void;
  readonly ffmpegPath: string;
}

export interface EventsServiceDeps {
  serial: string;
  config: Config['events'];
  /** Capture frame rate (the last frame's duration in a clip). */
  fps: number;
  spoolDir: string;
  clock: Clock;
  logger: Logger;
  events?: EventSink;
  stream: EventsStream;
  privacy: PrivacySource;
  membership: MembershipKeySource;
  sink: ArtifactSink;
  /** Event id source (url-safe); default: base36 time + 8 random hex digits. */
  newEventId?: () => string;
  /** Restart delay after the analysis ffmpeg dies unexpectedly. */
  restartMs?: number;
}

export interface EventsStatus {
  enabled: boolean;
  /** Analysis running now (enabled, privacy off, started). */
  running: boolean;
  phase: 'idle' | 'event' | 'cooldown';
  ring: { bytes: number; maxBytes: number; gops: number; spanMs: number; droppedForBytes: number };
  analysis: { pid: number | null; frames: number; droppedTags: number };
  counters: {
    events: number;
    snapshots: number;
    clips: number;
    notRecorded: number;
    failed: number;
    discarded: number;
  };
  lastError: { code: EventsCode | string; message: string; at: string } | null;
}

interface Run {
  gen: number;
  release: () => void;
  detach: () => void;
  analysis: FrameAnalysis;
  tick: NodeJS.Timeout;
  restart?: NodeJS.Timeout;
}

interface Recording {
  eventId: string;
  membership: MembershipKeys;
  recorder: ClipRecorder;
}

export class EventsService {
  private enabled: boolean;
  private started = false;
  private run: Run | undefined;
  private gen = 0;
  private readonly ring: GopRing;
  private detector: MotionDetector;
  private recording: Recording | undefined;
  private readonly inFlight = new Set<{ kill(): void }>();
  private readonly pending = new Set<Promise<void>>();
  private lastError: EventsStatus['lastError'] = null;
  readonly counters = { events: 0, snapshots: 0, clips: 0, notRecorded: 0, failed: 0, discarded: 0 };
  private readonly log: Logger;
  private readonly onPrivacy = (on: boolean) => this.reconcile(on ? 'privacy on' : 'privacy off');

  constructor(private readonly deps: EventsServiceDeps) {
    this.enabled = deps.config.enabled;
    this.log = deps.logger.child({ component: 'events' });
    const c = deps.config;
    this.ring = new GopRing({ preRollMs: c.preRollSeconds * 1000, maxBytes: c.ringMaxBytes });
    this.detector = this.newDetector();
  }

  private newDetector(): MotionDetector {
    const c = this.deps.config;
    return new MotionDetector({
      width: c.analysisWidth,
      height: c.analysisHeight,
      pixelThreshold: c.pixelThreshold,
      minChangedShare: c.minChangedPercent / 100,
      zones: c.zones,
      masks: c.masks,
      postRollMs: c.postRollSeconds * 1000,
      maxClipMs: c.maxClipSeconds * 1000,
      cooldownMs: c.cooldownSeconds * 1000,
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.deps.privacy.on('change', this.onPrivacy);
    this.reconcile('start');
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.deps.privacy.off('change', this.onPrivacy);
    this.halt('stop');
    await Promise.allSettled([...this.pending]);
  }

  /** `cmd/events` and config: turns events on or off at once. */
  setEnabled(on: boolean, by = 'cloud'): EventsStatus {
    if (on !== this.enabled) this.log.info({ enabled: on, by }, `motion events ${on ? 'on' : 'off'}`);
    this.enabled = on;
    this.reconcile(on ? 'enabled' : 'disabled');
    return this.status();
  }

  status(): EventsStatus {
    return {
      enabled: this.enabled,
      running: this.run !== undefined,
      phase: this.detector.phase.kind,
      ring: {
        bytes: this.ring.bytes,
        maxBytes: this.deps.config.ringMaxBytes,
        gops: this.ring.gopCount,
        spanMs: this.ring.spanMs,
        droppedForBytes: this.ring.droppedForBytes,
      },
      analysis: {
        pid: this.run?.analysis.pid ?? null,
        frames: this.run?.analysis.framesOut ?? 0,
        droppedTags: this.run?.analysis.droppedTags ?? 0,
      },
      counters: { ...this.counters },
      lastError: this.lastError,
    };
  }

  /** Resolves once every artifact begun so far is handed to the sink (or failed). Tests and stop. */
  async settled(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  private reconcile(why: string): void {
    const want = this.started && this.enabled && !this.deps.privacy.isOn();
    if (want && !this.run) this.begin(why);
    else if (!want && this.run) this.halt(why);
  }

  private begin(why: string): void {
    const gen = ++this.gen;
    const c = this.deps.config;
    const analysis = new FrameAnalysis({
      ffmpegPath: this.deps.stream.ffmpegPath,
      fps: c.analysisFps,
      width: c.analysisWidth,
      height: c.analysisHeight,
      onFrame: (gray) => this.onFrame(gen, gray),
      onExit: (reason) => this.onAnalysisExit(gen, reason),
    });
    let analysisStarted = false;
    const reader = new FlvTagReader(
      () => {
        if (!analysisStarted) analysis.start(FLV_VIDEO_HEADER);
        analysisStarted = true;
      },
      (t) => {
        if (gen !== this.gen) return;
        const tag: RingTag = { type: t.type, tsMs: tagTimeMs(t.ts), body: t.body, at: this.deps.clock.now() };
        if (t.type !== 9) return;
        this.ring.push(tag);
        analysis.write(tag, encodeTag(t.type, t.ts, t.body));
        this.recording?.recorder.push(tag);
      },
    );
    const release = this.deps.stream.acquire();
    const sink: FlvSink = {
      write: (chunk) => {
        try {
          reader.push(chunk);
        } catch (err) {
          this.fail('ERR_EVENTS_ANALYSIS', `hub stream unreadable: ${(err as Error).message}`);
        }
      },
      end: () => {
        // The hub went away (capture restart, shutdown): reattach shortly while still running.
        if (gen === this.gen && this.run) this.scheduleRestart(gen, 'hub stream ended');
      },
    };
    const detach = this.deps.stream.attach(sink);
    const tick = setInterval(() => {
      if (gen === this.gen && this.detector.tick(this.deps.clock.now()) === 'end') this.endClip();
    }, 500);
    tick.unref();
    this.run = { gen, release, detach, analysis, tick };
    this.log.info(
      { why, fps: c.analysisFps, size: `${c.analysisWidth}x${c.analysisHeight}` },
      'motion detection started',
    );
  }

  private halt(why: string): void {
    const r = this.run;
    this.run = undefined;
    this.gen++;
    if (r) {
      clearInterval(r.tick);
      if (r.restart) clearTimeout(r.restart);
      r.analysis.stop();
      r.detach();
      r.release();
    }
    // Recording stops at once: nothing that began before this moment is written.
    if (this.recording) {
      this.recording.recorder.abort();
      this.recording = undefined;
      this.counters.discarded++;
    }
    for (const k of this.inFlight) k.kill();
    this.inFlight.clear();
    this.ring.clear();
    this.detector.reset();
    if (r) this.log.info({ why }, 'motion detection stopped; pre-roll ring discarded');
  }

  private scheduleRestart(gen: number, reason: string): void {
    const r = this.run;
    if (!r || r.gen !== gen || r.restart) return;
    this.log.warn({ code: 'ERR_EVENTS_ANALYSIS', reason }, 'motion analysis interrupted; restarting');
    r.restart = setTimeout(() => {
      if (this.run?.gen !== gen) return;
      this.halt('restart');
      this.reconcile('restart');
    }, this.deps.restartMs ?? 2000);
    r.restart.unref();
  }

  private onAnalysisExit(gen: number, reason: string): void {
    if (gen !== this.gen) return;
    this.fail('ERR_EVENTS_ANALYSIS', reason);
    this.scheduleRestart(gen, reason);
  }

  private onFrame(gen: number, gray: Uint8Array): void {
    if (gen !== this.gen) return;
    const action = this.detector.frame(gray, this.deps.clock.now());
    if (action === 'start') this.trigger(gen);
    else if (action === 'end') this.endClip();
  }

  private trigger(gen: number): void {
    this.counters.events++;
    const eventId =
      this.deps.newEventId?.() ?? `${this.deps.clock.now().toString(36)}${randomBytes(4).toString('hex')}`;
    const membership = this.deps.membership();
    if (!membership || membership.keys.length === 0) {
      this.counters.notRecorded++;
      this.fail(
        'ERR_EVENTS_NO_VIEWER_KEYS',
        'motion detected but the membership has no viewer key: nothing recorded',
      );
      this.deps.events?.emit({
        type: 'motion_not_recorded',
        at: new Date(this.deps.clock.now()).toISOString(),
        serial: this.deps.serial,
        reason: 'ERR_EVENTS_NO_VIEWER_KEYS',
        data: { eventId, membershipVersion: membership?.version ?? null },
      });
      return;
    }
    this.log.info(
      { eventId, sealedTo: membership.keys.length, membershipVersion: membership.version },
      'motion event',
    );
    const at = this.deps.clock.now();
    // Snapshot: the frame at the trigger.
    try {
      const run = startSnapshot(
        this.deps.stream.ffmpegPath,
        this.ring.sequenceHeader,
        this.ring.currentGop(),
      );
      this.inFlight.add(run);
      this.track(
        run.done.then(
          async (jpeg) => {
            this.inFlight.delete(run);
            await this.deliver(gen, {
              eventId,
              kind: 'snapshot',
              plaintext: jpeg,
              startedAt: at,
              durationMs: 0,
              membership,
            });
          },
          (err) => {
            this.inFlight.delete(run);
            if (gen === this.gen) this.fail('ERR_EVENTS_SNAPSHOT', (err as Error).message);
          },
        ),
      );
    } catch (err) {
      this.fail('ERR_EVENTS_SNAPSHOT', (err as Error).message);
    }
    // Clip: pre-roll now, live tags until the detector ends the event.
    try {
      const recorder = new ClipRecorder(
        this.deps.stream.ffmpegPath,
        this.ring.sequenceHeader,
        this.ring.preRoll(),
        {
          frameMs: Math.round(1000 / this.deps.fps),
          maxBytes: 64 << 20,
        },
      );
      this.recording = { eventId, membership, recorder };
    } catch (err) {
      this.fail('ERR_EVENTS_CLIP', (err as Error).message);
    }
  }

  private endClip(): void {
    const rec = this.recording;
    this.recording = undefined;
    if (!rec) return;
    const gen = this.gen;
    this.inFlight.add(rec.recorder);
    this.track(
      rec.recorder.finish().then(
        async (clip) => {
          this.inFlight.delete(rec.recorder);
          await this.deliver(gen, {
            eventId: rec.eventId,
            kind: 'clip',
            plaintext: clip.mp4,
            startedAt: clip.startedAt,
            durationMs: clip.durationMs,
            membership: rec.membership,
          });
        },
        (err) => {
          this.inFlight.delete(rec.recorder);
          if (gen === this.gen) this.fail('ERR_EVENTS_CLIP', (err as Error).message);
        },
      ),
    );
  }

  private async deliver(
    gen: number,
    a: {
      eventId: string;
      kind: ArtifactKind;
      plaintext: Uint8Array;
      startedAt: number;
      durationMs: number;
      membership: MembershipKeys;
    },
  ): Promise<void> {
    // Privacy (or off) since the trigger: this artifact is discarded, never sealed or written.
    if (gen !== this.gen) {
      this.counters.discarded++;
      return;
    }
    try {
      const meta = await sealToSpool({ serial: this.deps.serial, spoolDir: this.deps.spoolDir, ...a });
      if (gen !== this.gen) {
        // Privacy turned on while sealing: the sealed file never reaches the sink.
        rmSync(meta.path, { force: true });
        this.counters.discarded++;
        return;
      }
      this.counters[a.kind === 'snapshot' ? 'snapshots' : 'clips']++;
      this.log.info(
        {
          id: meta.id,
          kind: meta.kind,
          size: meta.size,
          durationMs: meta.durationMs,
          sealedTo: meta.sealedTo.length,
        },
        'artifact sealed',
      );
      await this.deps.sink.enqueue(meta);
    } catch (err) {
      this.fail(isLenscapError(err) ? err.code : 'ERR_EVENTS_SPOOL', (err as Error).message);
    }
  }

  private track(p: Promise<void>): void {
    const q = p.catch(() => undefined).finally(() => this.pending.delete(q));
    this.pending.add(q);
  }

  private fail(code: EventsCode | string, message: string): void {
    this.counters.failed += code === 'ERR_EVENTS_NO_VIEWER_KEYS' ? 0 : 1;
    this.lastError = { code, message, at: new Date(this.deps.clock.now()).toISOString() };
    this.log.warn({ code }, message);
  }
}

export function createEventsService(deps: EventsServiceDeps): EventsService {
  return new EventsService(deps);
}
