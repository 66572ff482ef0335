/**
 * The clip: pre-roll from the ring, then live tags until the event ends, muxed by ffmpeg into
 * fragmented MP4 with stream copy (no re-encode), held in memory until it is sealed. Duration is
 * the media time from the first to the last tag written plus one frame.
 * Must never re-encode, outlive `abort()` (privacy), nor grow past its byte cap.
 */
import { LenscapError } from '../errors.ts';
import { runFfmpeg, type FfmpegRun } from './ffmpeg-run.ts';
import { FlvWriter } from './flv-out.ts';
import type { RingTag } from './ring.ts';

export interface ClipResult {
  mp4: Buffer;
  /** Clock time of the first frame. */
  startedAt: number;
  durationMs: number;
  frames: number;
}

export class ClipRecorder {
  private readonly run: FfmpegRun;
  private readonly w = new FlvWriter();
  private first: RingTag | undefined;
  private last: RingTag | undefined;
  private frames = 0;
  private bytes = 0;
  private closed = false;

  constructor(
    ffmpegPath: string,
    seq: RingTag | undefined,
    preRoll: RingTag[],
    private readonly o: { frameMs: number; maxBytes: number },
  ) {
    if (!seq || preRoll.length === 0)
      throw new LenscapError('ERR_EVENTS_CLIP', 'no keyframe in the ring yet: no clip to start');
    this.run = runFfmpeg(
      ffmpegPath,
      [
        '-f',
        'flv',
        '-i',
        'pipe:0',
        '-an',
        '-c:v',
        'copy',
        '-movflags',
        '+frag_keyframe+empty_moov+default_base_moof',
        '-f',
        'mp4',
        'pipe:1',
      ],
      { code: 'ERR_EVENTS_CLIP', timeoutMs: 15 * 60_000, maxOutBytes: o.maxBytes + (1 << 20) },
    );
    this.run.stdin.write(this.w.start(seq));
    for (const t of preRoll) this.push(t);
  }

  get pid(): number | undefined {
    return this.run.pid;
  }

  /** A live tag after the trigger (non-video tags are skipped). */
  push(t: RingTag): void {
    if (this.closed || t.type !== 9) return;
    if (this.bytes + t.body.length > this.o.maxBytes) return;
    this.first ??= t;
    this.last = t;
    this.frames++;
    this.bytes += t.body.length;
    this.run.stdin.write(this.w.tag(t));
  }

  async finish(): Promise<ClipResult> {
    this.closed = true;
    this.run.stdin.end();
    const mp4 = await this.run.done;
    const first = this.first!;
    const last = this.last!;
    return {
      mp4,
      startedAt: first.at,
      durationMs: Math.max(0, Math.round(last.tsMs - first.tsMs + this.o.frameMs)),
      frames: this.frames,
    };
  }

  abort(): void {
    this.closed = true;
    this.run.kill();
    this.run.done.catch(() => undefined);
  }

  kill(): void {
    this.abort();
  }
}
