/**
 * The camera's event side for tests: the real stream service (test pattern with the motion hook
 * through real ffmpeg into the real in-process hub), the privacy state, and an EventsService sealing
 * to generated viewer keys, with a sink that collects what it is handed. One stream service per
 * test process (node-media-server is a singleton); events services come and go on it.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { systemClock } from '../../agent/clock.ts';
import { loadConfig } from '../../agent/config/load.ts';
import type { Config } from '../../agent/config/schema.ts';
import type { SealedArtifact } from '../../agent/events/artifact.ts';
import { createEventsService, type EventsService } from '../../agent/events/service.ts';
import type { MembershipKeys } from '../../agent/events/spool.ts';
import { createLogger, silentLogger } from '../../agent/log.ts';
import { createPrivacyState, type PrivacyState } from '../../agent/privacy/state.ts';
import { createStreamService, type StreamService } from '../../agent/stream/service.ts';
import { createTestPatternDriver, setTestPatternMotion } from '../../drivers/camera/testpattern.ts';
import { createNoSwitch } from '../../drivers/privacy/none.ts';
import { DEJAVU_FONT } from '../../harness/ffmpeg.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { waitUntil } from '../../harness/wait.ts';

export const SERIAL = 'CAM-EV-1';

export interface EventsFixture {
  dir: string;
  spoolDir: string;
  stream: StreamService;
  privacy: PrivacyState;
  motion(on: boolean): void;
  /**
   * Resolves once `svc`'s analysis has seen `seconds` of frames (at its analysis rate): motion that
   * lasts that long in stream time, however slow the machine runs ffmpeg (bounded).
   */
  motionLasts(svc: EventsService, seconds: number): Promise<void>;
  makeEvents(
    membership: () => MembershipKeys | undefined,
    over?: Partial<Config['events']>,
  ): { svc: EventsService; got: SealedArtifact[]; events: MemoryEventSink };
  spoolFiles(): string[];
  close(): Promise<void>;
}

export async function makeEventsFixture(): Promise<EventsFixture> {
  const { dir, cleanup } = makeTempDir('lenscap-events-');
  const { config } = loadConfig(undefined, {});
  const logger = process.env.LENSCAP_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger();
  const motionFile = join(dir, 'testpattern-motion');
  const spoolDir = join(dir, 'events', 'spool');
  const privacy = createPrivacyState({
    initial: false,
    hardware: createNoSwitch(),
    serial: SERIAL,
    clock: systemClock,
    logger,
  });
  privacy.start();
  const stream = createStreamService({
    serial: SERIAL,
    stream: { ...config.stream, mode: 'on-demand', idleStopSeconds: 1 },
    camera: { ...config.camera, width: 320, height: 180, fps: 15, gopSeconds: 1, bitrateKbps: 400 },
    logger,
    privacy,
    cameraDriver: createTestPatternDriver({ hasDrawtext: true, fontFile: DEJAVU_FONT, motionFile }),
    backoff: { initialMs: 200, maxMs: 2000 },
  });
  await stream.start();
  const services: EventsService[] = [];
  return {
    dir,
    spoolDir,
    stream,
    privacy,
    motion: (on) => setTestPatternMotion(motionFile, on),
    async motionLasts(svc, seconds) {
      const want = Math.ceil(seconds * config.events.analysisFps);
      // Frames seen since now; an analysis restart starts its count again from 0.
      let seen = 0;
      let last = svc.status().analysis.frames;
      await waitUntil(
        () => {
          const now = svc.status().analysis.frames;
          seen += now >= last ? now - last : now;
          last = now;
          return seen >= want;
        },
        seconds * 1000 + 15_000,
        `${seconds} s of frames through the analysis`,
        { stepMs: 20 },
      );
    },
    makeEvents(membership, over = {}) {
      const got: SealedArtifact[] = [];
      const events = new MemoryEventSink();
      const svc = createEventsService({
        serial: SERIAL,
        config: {
          ...config.events,
          enabled: true,
          preRollSeconds: 2,
          postRollSeconds: 1,
          maxClipSeconds: 8,
          cooldownSeconds: 2,
          ...over,
        },
        fps: 15,
        spoolDir,
        clock: systemClock,
        logger,
        events,
        stream,
        privacy,
        membership,
        sink: { enqueue: async (a) => void got.push(a) },
        restartMs: 300,
      });
      services.push(svc);
      return { svc, got, events };
    },
    spoolFiles: () => {
      try {
        return readdirSync(spoolDir);
      } catch {
        return [];
      }
    },
    async close() {
      for (const s of services) await s.stop();
      await stream.stop();
      privacy.stop();
      cleanup();
    },
  };
}
