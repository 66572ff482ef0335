/**
 * Keeps one capture ffmpeg running while wanted: prepares the camera arguments (driver errors are
 * coded and retried), runs ffmpeg writing FLV into the hub's ingest (or to a URL), restarts it
 * with exponential backoff when it dies or its output is refused as unreadable, and stops it with
 * q → SIGTERM → SIGKILL. Never leaves a child behind: `stop()`
 * resolves only once the process is gone.
 */
import { EventEmitter } from 'node:events';
import type { CameraDriver, CameraRequest } from '../../drivers/camera/types.ts';
import { systemClock, unrefTimer, type Random, type Time, type TimerHandle } from '../clock.ts';
import type { Logger } from '../log.ts';
import { redactText } from '../redact.ts';
import { runFfmpeg, splitInput, type FfmpegRun } from './ffmpeg-process.ts';
import type { Writable } from 'node:stream';

/** A coded failure of a run's output (the hub could not read what ffmpeg wrote). */
export interface OutputFailure {
  code: string;
  message: string;
}
/** Makes one run's output Writable (ffmpeg's stdout goes there); `onFailure` stops that run. */
export type OutputFactory = (onFailure: (f: OutputFailure) => void) => Writable;

export interface SupervisorOptions {
  ffmpegPath: string;
  camera: CameraDriver;
  request: CameraRequest;
  /** A URL, or a fresh Writable per run (the hub's ingest). */
  output: string | OutputFactory;
  logger: Logger;
  random?: Random;
  /** The restart backoff and the failure times run on it (default: the system clock). */
  clock?: Time;
  /** First retry delay and cap (ms). */
  backoff?: { initialMs: number; maxMs: number };
}

export interface SupervisorStatus {
  wanted: boolean;
  running: boolean;
  pid?: number;
  describe?: string;
  restarts: number;
  lastError?: { code: string; message: string; at: number };
}

export class CaptureSupervisor extends EventEmitter {
  private wanted = false;
  private run: FfmpegRun | undefined;
  private timer: TimerHandle | undefined;
  private failures = 0;
  private startedAt = 0;
  private loop: Promise<void> = Promise.resolve();
  /** Bumped by start() and stop(): a run's exit belongs to the period that launched it. */
  private period = 0;
  readonly status: SupervisorStatus = { wanted: false, running: false, restarts: 0 };

  private readonly clock: Time;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    if (this.wanted) return;
    this.wanted = this.status.wanted = true;
    this.period++;
    this.failures = 0;
    // A fresh start owes nothing to the last run: its error must not be named as the reason a new
    // viewer gets no media (the gate's no_media answer reads it).
    delete this.status.lastError;
    this.loop = this.loop.then(() => this.launch());
  }

  /** Resolves once no capture process remains. */
  async stop(): Promise<void> {
    this.wanted = this.status.wanted = false;
    this.period++;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.loop;
    const r = this.run;
    if (r) await r.stop();
  }

  pid(): number | undefined {
    return this.run?.pid();
  }

  private async launch(): Promise<void> {
    if (!this.wanted || this.run) return;
    const period = this.period;
    const log = this.opts.logger;
    let args;
    try {
      args = await this.opts.camera.prepare(this.opts.request);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERR_CAMERA';
      this.fail(code, (err as Error).message);
      return;
    }
    if (!this.wanted) return;
    const { options, source } = splitInput(args.input);
    // The first refusal of this run's output is its failure (not the exit it causes).
    let outputFailure: OutputFailure | undefined;
    let launched: FfmpegRun | undefined;
    let output: string | Writable;
    try {
      output =
        typeof this.opts.output === 'string'
          ? this.opts.output
          : this.opts.output((f) => {
              if (outputFailure) return;
              outputFailure = f;
              void launched?.stop();
            });
    } catch (err) {
      // The hub would not take this run (a coded refusal): a failure like any other, never a throw
      // out of the launch loop.
      this.fail((err as { code?: string }).code ?? 'ERR_HUB_INGEST', (err as Error).message);
      return;
    }
    const run = runFfmpeg({
      ffmpegPath: this.opts.ffmpegPath,
      inputOptions: options,
      source,
      outputOptions: [...args.video, '-an', '-f', 'flv', '-flvflags', 'no_duration_filesize'],
      output,
    });
    launched = run;
    this.run = run;
    this.status.describe = args.describe;
    const pid = await run.started;
    this.startedAt = this.clock.now();
    if (pid) {
      this.status.running = true;
      this.status.pid = pid;
      log.info({ pid, capture: args.describe }, 'capture started');
      this.emit('started', pid);
    }
    void run.exited.then((x) => {
      if (this.run === run) {
        this.run = undefined;
        this.status.running = false;
        delete this.status.pid;
      }
      this.emit('exited', x);
      if (!this.wanted || period !== this.period) {
        log.info({ code: x.code, signal: x.signal }, 'capture stopped');
        // Stopped and wanted again before this exit was seen: not a failure of now, and this
        // period's own launch found the old run still there, so it starts here.
        if (this.wanted) this.loop = this.loop.then(() => this.launch());
        return;
      }
      // A run that lasted a while was healthy: start the backoff from the beginning.
      if (this.clock.now() - this.startedAt > 10_000) this.failures = 0;
      this.status.restarts++;
      // The hub refused what this run wrote and we stopped it: that refusal is the failure.
      if (outputFailure) {
        this.fail(outputFailure.code, outputFailure.message);
        return;
      }
      this.fail(
        'ERR_CAPTURE_EXITED',
        `ffmpeg exited (code ${x.code}, signal ${x.signal})${x.error ? `: ${x.error}` : ''} ${x.stderrTail.trim().split('\n').slice(-2).join(' | ')}`,
      );
    });
  }

  private fail(code: string, rawMessage: string): void {
    // ffmpeg's text may carry its output URL (a relay's key rides in its query).
    const message = redactText(rawMessage);
    this.status.lastError = { code, message, at: this.clock.now() };
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 300, maxMs: 30_000 };
    const ceiling = Math.min(maxMs, initialMs * 2 ** this.failures);
    // Half fixed, half jitter: quick first retry, no lockstep across restarts.
    const delay = Math.round(ceiling / 2 + (this.opts.random ?? Math.random)() * (ceiling / 2));
    this.failures++;
    this.opts.logger.error({ code, err: message, retryInMs: delay }, 'capture failed; retrying');
    // `consecutive`: failures since capture was last wanted afresh or ran healthy for 10 s — one
    // exit after a good run is 1 (restarted at once), a camera that cannot start climbs.
    this.emit('failed', { code, message, retryInMs: delay, consecutive: this.failures });
    if (!this.wanted) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.loop = this.loop.then(() => this.launch());
    }, delay);
    unrefTimer(this.timer);
  }
}
