/**
 * The camera driver contract: what a device offers and the ffmpeg arguments that turn a chosen
 * mode into an H.264 elementary stream. Drivers describe; they never spawn ffmpeg themselves and
 * never import from agent/.
 */

/** A coded error a driver raises; the agent reports `code` and retries. */
export class CameraError extends Error {
  constructor(
    readonly code:
      | 'ERR_CAMERA_MISSING'
      | 'ERR_CAMERA_BUSY'
      | 'ERR_CAMERA_MODE_UNSUPPORTED'
      | 'ERR_CAMERA_PROBE'
      | 'ERR_CAMERA_PROBE_TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'CameraError';
  }
}

export interface CameraRequest {
  device: string;
  width: number;
  height: number;
  fps: number;
  gopSeconds: number;
  bitrateKbps: number;
  label: string;
  color: string;
}

/** ffmpeg argument lists, split so the pipeline can add its own output. */
export interface CaptureArgs {
  /** Everything before the output: input options and `-i`. */
  input: string[];
  /** Video codec, filters and GOP options. */
  video: string[];
  /** How the stream is produced, for logs and telemetry. */
  describe: string;
}

export interface CameraDriver {
  readonly name: 'v4l2' | 'testpattern';
  /** Resolves the capture arguments for the request; throws CameraError when it cannot. */
  prepare(req: CameraRequest): Promise<CaptureArgs>;
  /**
   * Optional: do the slow part of `prepare` ahead of the first viewer (a format probe), so a cold
   * start pays only for the capture itself. Never throws; a failure is met again by `prepare`.
   */
  warm?(req: CameraRequest): void;
}

export interface RunResult {
  code: number | null;
  out: string;
  /** True when the program was killed for running past `timeoutMs`. */
  timedOut?: boolean;
}

/** Runs a program and returns its stdout+stderr; injectable so probes are testable. */
export type Runner = (cmd: string, args: string[], opts?: { timeoutMs?: number }) => Promise<RunResult>;
