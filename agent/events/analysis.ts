/**
 * The frames motion detection looks at: a second, low-rate, downscaled gray copy of the picture.
 * One ffmpeg reads the camera's FLV (the hub tap, on stdin) and writes `width×height` 8-bit gray
 * frames, `fps` a second, on stdout (`select,scale,format=gray`, one decoder thread, loop
 * filter skipped: a 64×48 picture needs no more). A gap in the camera's timestamps gives no frame,
 * never a repeated one: a repeat has no change and would read as the scene standing still. It runs
 * only while events are on and privacy is off.
 * Must never buffer without bound (input is dropped up to the next keyframe when ffmpeg lags),
 * nor keep running after `stop()`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { isVideoKeyframe } from './ring.ts';

export interface AnalysisOptions {
  ffmpegPath: string;
  fps: number;
  width: number;
  height: number;
  onFrame: (gray: Uint8Array) => void;
  /** ffmpeg exited while it should run (the caller decides about a restart). */
  onExit: (why: string) => void;
}

/** Input held for a lagging ffmpeg before tags are dropped. */
const MAX_PENDING_INPUT = 2 << 20;

export function analysisArgs(o: Pick<AnalysisOptions, 'fps' | 'width' | 'height'>): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-threads',
    '1',
    '-skip_loop_filter',
    'all',
    '-flags2',
    '+fast',
    '-probesize',
    '65536',
    '-analyzeduration',
    '500000',
    '-f',
    'flv',
    '-i',
    'pipe:0',
    '-an',
    '-vf',
    // The first frame of each 1/fps slot of stream time: `fps` a second on a steady camera, like
    // the fps filter, but a gap in the camera's timestamps gives no frame where the fps filter
    // fills it with copies of the last one, and copies read as "no motion".
    `select='isnan(prev_selected_t)+gt(floor(t*${o.fps})\\,floor(prev_selected_t*${o.fps}))',scale=${o.width}:${o.height}:flags=fast_bilinear,format=gray`,
    '-vsync',
    'passthrough',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
}

export class FrameAnalysis {
  private child: ChildProcessWithoutNullStreams | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private dropping = false;
  private stopped = false;
  framesOut = 0;
  droppedTags = 0;

  constructor(private readonly o: AnalysisOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(header: Buffer): void {
    const size = this.o.width * this.o.height;
    const child = spawn(this.o.ffmpegPath, analysisArgs(this.o), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let err = '';
    child.stdin.on('error', () => undefined);
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 2000) err += b.toString('utf8');
    });
    child.stdout.on('data', (b: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, b]) : b;
      while (this.pending.length >= size) {
        const f = new Uint8Array(this.pending.subarray(0, size));
        this.pending = this.pending.subarray(size);
        this.framesOut++;
        this.o.onFrame(f);
      }
    });
    child.on('error', (e) => {
      if (!this.stopped) this.o.onExit(`ffmpeg did not start: ${e.message}`);
    });
    child.on('close', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (!this.stopped)
        this.o.onExit(`ffmpeg exited ${code ?? signal}: ${err.trim().split('\n').pop() ?? ''}`);
    });
    child.stdin.write(header);
  }

  /** One FLV tag (already framed, with PreviousTagSize) for the decoder. */
  write(tag: { type: number; body: Buffer }, bytes: Buffer): void {
    const c = this.child;
    if (!c || this.stopped) return;
    if (this.dropping || c.stdin.writableLength > MAX_PENDING_INPUT) {
      if (!isVideoKeyframe(tag) || c.stdin.writableLength > MAX_PENDING_INPUT) {
        this.dropping = true;
        this.droppedTags++;
        return;
      }
      this.dropping = false;
    }
    c.stdin.write(bytes);
  }

  stop(): void {
    this.stopped = true;
    const c = this.child;
    this.child = undefined;
    if (c) {
      c.stdin.destroy();
      c.kill('SIGKILL');
    }
  }
}
