/**
 * The camera driver contract: what a device offers and the ffmpeg arguments that turn a chosen
 * mode into an H.264 elementary stream. Drivers describe; they never spawn ffmpeg themselves and
 * never import from agent/.
 */

/** A coded error a driver raises; the agent reports `code` and retries. */
export class CameraError extends Error {
  constructor(
    readonly code:
      'ERR_CAMERA_MISSING' | 'ERR_CAMERA_BUSY' | 'ERR_CAMERA_MODE_UNSUPPORTED' | 'ERR_CAMERA_PROBE',
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
}

/** Runs a program and returns its stdout+stderr; injectable so probes are testable. */
export type Runner = (cmd: string, args: string[]) => Promise<{ code: number | null; out: string }>;
