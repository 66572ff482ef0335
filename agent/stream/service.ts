/**
 * The capture pipeline as one service: the in-process media hub, the camera driver and the
 * supervised ffmpeg whose stdout the hub ingests. On demand it runs while anyone holds a lease (gate sessions, pushes)
 * and stops `idleStopSeconds` after the last; `always` keeps it running. Privacy on stops capture
 * outright and keeps it stopped. Must never listen on a socket (the hub has none).
 */
import { createRequire } from 'node:module';
import type { CameraDriver } from '../../drivers/camera/types.ts';
import { execRunner } from '../../drivers/camera/runner.ts';
import { selectCamera } from '../../drivers/camera/registry.ts';
import { systemClock, unrefTimer, type Random, type Time, type TimerHandle } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { resolveFfmpegPath } from './ffmpeg-path.ts';
import { createMediaHub, type FlvSink, type MediaHub } from './media-hub.ts';
import { CaptureSupervisor, type SupervisorStatus } from './supervisor.ts';
import type { PrivacySource } from '../privacy/state.ts';

export interface StreamServiceDeps {
  serial: string;
  stream: Config['stream'];
  camera: Config['camera'];
  logger: Logger;
  privacy: PrivacySource;
  /** Resolved ffmpeg; default: resolveFfmpegPath(stream.ffmpegPath). */
  ffmpegPath?: string;
  /** Driver override (tests); default: the registry's choice from camera.driver. */
  cameraDriver?: CameraDriver;
  sysfsRoot?: string;
  /** Test pattern motion hook file (camera.testPatternMotionHook): still picture, motion on demand. */
  testPatternMotionFile?: string;
  random?: Random;
  /** The idle stop and the capture restart backoff run on it (default: the system clock). */
  clock?: Time;
  backoff?: { initialMs: number; maxMs: number };
}

export interface StreamStatus {
  mode: 'on-demand' | 'always';
  leases: number;
  camera?: string;
  cameraReason?: string;
  publishing: boolean;
  capture: SupervisorStatus;
}

export class StreamService {
  hub!: MediaHub;
  private supervisor!: CaptureSupervisor;
  private leases = 0;
  private idleTimer: TimerHandle | undefined;
  private cameraReason = '';
  private cameraName = '';
  ffmpegPath = '';
  private readonly onPrivacy = (on: boolean) => this.reconcile(on ? 'privacy on' : 'privacy off');

  private get clock(): Time {
    return this.deps.clock ?? systemClock;
  }

  constructor(private readonly deps: StreamServiceDeps) {}

  async start(): Promise<void> {
    const log = this.deps.logger;
    this.ffmpegPath =
      this.deps.ffmpegPath ?? resolveFfmpegPath({ configPath: this.deps.stream.ffmpegPath }).path;
    let driver = this.deps.cameraDriver;
    if (driver) this.cameraReason = 'given by the caller';
    else {
      const sel = await selectCamera({
        driver: this.deps.camera.driver,
        device: this.deps.camera.device,
        ffmpegPath: this.ffmpegPath,
        runner: execRunner,
        ...(this.deps.sysfsRoot ? { sysfsRoot: this.deps.sysfsRoot } : {}),
        ...(this.deps.testPatternMotionFile
          ? { testPatternMotionFile: this.deps.testPatternMotionFile }
          : {}),
      });
      driver = sel.driver;
      this.cameraReason = sel.reason;
    }
    this.cameraName = driver.name;
    log.info(
      { camera: driver.name, reason: this.cameraReason, ffmpeg: this.ffmpegPath },
      `camera driver: ${driver.name}`,
    );
    await prewarmFluent(this.ffmpegPath);
    this.hub = createMediaHub({ serial: this.deps.serial, logger: log });
    const c = this.deps.camera;
    const request = {
      device: c.device,
      width: c.width,
      height: c.height,
      fps: c.fps,
      gopSeconds: c.gopSeconds,
      bitrateKbps: c.bitrateKbps,
      label: c.label,
      color: c.color,
    };
    // The format probe is a whole ffmpeg start; done now, the first viewer waits only for capture.
    driver.warm?.(request);
    this.supervisor = new CaptureSupervisor({
      ffmpegPath: this.ffmpegPath,
      camera: driver,
      request,
      // ffmpeg's stdout straight into the hub: no socket, no RTMP round trips before the first frame.
      output: (onFailure) => this.hub.ingest(onFailure),
      logger: log.child({ module: 'capture' }),
      ...(this.deps.random ? { random: this.deps.random } : {}),
      clock: this.clock,
      ...(this.deps.backoff ? { backoff: this.deps.backoff } : {}),
    });
    this.deps.privacy.on('change', this.onPrivacy);
    this.reconcile('start');
  }

  /** Holds the pipeline up; call the returned release exactly once. */
  acquire(): () => void {
    this.leases++;
    this.reconcile('lease');
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.leases--;
      this.reconcile('release');
    };
  }

  attach(sink: FlvSink): () => void {
    return this.hub.attach(sink);
  }

  /**
   * Calls `fn` with each capture failure (camera driver error or ffmpeg exit, coded, with the count
   * of failures in a row), so a viewer waiting for its first keyframe gets an answer instead of
   * silence. Returns the unsubscribe.
   */
  onCaptureFailed(fn: (f: { code: string; consecutive: number }) => void): () => void {
    const s = this.supervisor;
    if (!s) return () => undefined;
    const listener = (f: { code: string; consecutive: number }) =>
      fn({ code: f.code, consecutive: f.consecutive });
    s.on('failed', listener);
    return () => s.off('failed', listener);
  }

  /** The last capture failure while no capture runs (undefined once capture is up). */
  captureError(): { code: string } | undefined {
    const st = this.supervisor?.status;
    return st && !st.running && st.lastError ? { code: st.lastError.code } : undefined;
  }

  capturePid(): number | undefined {
    return this.supervisor?.pid();
  }

  get supervisorEvents(): CaptureSupervisor {
    return this.supervisor;
  }

  status(): StreamStatus {
    return {
      mode: this.deps.stream.mode,
      leases: this.leases,
      camera: this.cameraName,
      cameraReason: this.cameraReason,
      publishing: this.hub?.isLive() ?? false,
      capture: { ...this.supervisor.status },
    };
  }

  private reconcile(why: string): void {
    if (!this.supervisor) return;
    const want = !this.deps.privacy.isOn() && (this.deps.stream.mode === 'always' || this.leases > 0);
    if (want) {
      if (this.idleTimer !== undefined) this.clock.clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
      this.supervisor.start();
      return;
    }
    if (this.deps.privacy.isOn()) {
      void this.halt(why);
      return;
    }
    if (!this.idleTimer && this.supervisor.status.wanted) {
      this.idleTimer = this.clock.setTimeout(() => {
        this.idleTimer = undefined;
        if (this.leases === 0 && this.deps.stream.mode !== 'always') void this.halt('idle');
      }, this.deps.stream.idleStopSeconds * 1000);
      unrefTimer(this.idleTimer);
    }
  }

  private async halt(why: string): Promise<void> {
    if (this.idleTimer !== undefined) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.supervisor.status.wanted && !this.supervisor.status.running) return;
    this.deps.logger.info({ why }, 'stopping capture');
    // A deliberate stop: the next viewer must not be served the last GOP of the old run. Dropped
    // before the run is gone, not after: capture wanted again meanwhile (privacy off at once)
    // starts a run whose pipe the hub takes at spawn, and that fresh publish must neither resume
    // the old one (its GOP) nor be dropped itself; the old run's last bytes count for nothing.
    this.hub.dropPublish();
    await this.supervisor.stop();
  }

  async stop(): Promise<void> {
    this.deps.privacy.off('change', this.onPrivacy);
    if (this.idleTimer !== undefined) this.clock.clearTimeout(this.idleTimer);
    if (this.supervisor) await this.supervisor.stop();
    if (this.hub) await this.hub.close();
  }
}

/** fluent-ffmpeg probes formats/encoders on its first run (120–400 ms); pay that at start, not at a viewer's first join. */
async function prewarmFluent(ffmpegPath: string): Promise<void> {
  const require = createRequire(import.meta.url);
  const ffmpeg = require('fluent-ffmpeg') as () => {
    setFfmpegPath(p: string): {
      getAvailableFormats(cb: (e: unknown) => void): void;
      getAvailableEncoders(cb: (e: unknown) => void): void;
    };
  };
  const cmd = ffmpeg().setFfmpegPath(ffmpegPath);
  await Promise.all([
    new Promise((r) => cmd.getAvailableFormats(r)),
    new Promise((r) => cmd.getAvailableEncoders(r)),
  ]);
}

export function createStreamService(deps: StreamServiceDeps): StreamService {
  return new StreamService(deps);
}
