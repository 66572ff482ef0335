/**
 * One ffmpeg run through fluent-ffmpeg, with a stop that escalates: `q` on stdin (or end of the
 * piped input), then SIGTERM, then SIGKILL — fluent-ffmpeg's own kill() is SIGKILL at once, which
 * leaves a half-written RTMP stream. Resolves `exited` exactly once. Never runs a shell.
 */
import { createRequire } from 'node:module';
import type { Readable, Writable } from 'node:stream';
import type { ChildProcess } from 'node:child_process';

const require = createRequire(import.meta.url);
// fluent-ffmpeg is CommonJS without bundled types here; this is the slice used.
interface FfCommand {
  setFfmpegPath(p: string): FfCommand;
  input(src: string | Readable): FfCommand;
  inputOptions(o: string[]): FfCommand;
  outputOptions(o: string[]): FfCommand;
  output(t: string | Writable): FfCommand;
  on(ev: string, fn: (...a: unknown[]) => void): FfCommand;
  run(): void;
  ffmpegProc?: ChildProcess;
}
const ffmpeg = require('fluent-ffmpeg') as (opts?: Record<string, unknown>) => FfCommand;

export interface FfmpegSpec {
  ffmpegPath: string;
  /** Input options before `-i`. */
  inputOptions: string[];
  /** `-i` argument, or a stream piped to stdin. */
  source: string | Readable;
  outputOptions: string[];
  /** A URL or file, or a Writable that gets ffmpeg's stdout (`pipe:1`). */
  output: string | Writable;
}

export interface FfmpegRun {
  /** Resolves when the process has started (pid known) or failed to. */
  started: Promise<number | undefined>;
  /** Resolves when the process is gone; `error` holds ffmpeg's complaint for unexpected exits. */
  exited: Promise<{ code: number | null; signal: string | null; error?: string; stderrTail: string }>;
  pid(): number | undefined;
  stop(graceMs?: number): Promise<void>;
}

/** Splits `[...opts, '-i', src]` into options and source. */
export function splitInput(input: string[]): { options: string[]; source: string } {
  const i = input.lastIndexOf('-i');
  if (i < 0 || i !== input.length - 2) throw new Error('capture input must end with -i <source>');
  return { options: input.slice(0, i), source: input[i + 1] as string };
}

export function runFfmpeg(spec: FfmpegSpec): FfmpegRun {
  const cmd = ffmpeg({ stdoutLines: 0 })
    .setFfmpegPath(spec.ffmpegPath)
    .input(spec.source)
    .inputOptions(['-hide_banner', '-nostats', '-loglevel', 'error', ...spec.inputOptions])
    .outputOptions(spec.outputOptions)
    .output(spec.output);
  let proc: ChildProcess | undefined;
  let resolveStarted!: (pid: number | undefined) => void;
  const started = new Promise<number | undefined>((r) => (resolveStarted = r));
  let exitInfo: { code: number | null; signal: string | null } = { code: null, signal: null };
  let stderrTail = '';
  let done = false;
  const exited = new Promise<{
    code: number | null;
    signal: string | null;
    error?: string;
    stderrTail: string;
  }>((resolve) => {
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      resolveStarted(undefined);
      resolve({ ...exitInfo, ...(error ? { error } : {}), stderrTail });
    };
    cmd.on('start', () => {
      proc = cmd.ffmpegProc;
      proc?.on('exit', (code, signal) => (exitInfo = { code, signal }));
      // A piped input's writer sees EPIPE when ffmpeg goes; that is an exit, not a crash of ours.
      proc?.stdin?.on('error', () => undefined);
      resolveStarted(proc?.pid);
    });
    cmd.on('stderr', (line) => {
      stderrTail = `${stderrTail}\n${String(line)}`.slice(-2000);
    });
    cmd.on('end', () => finish());
    cmd.on('error', (err) => finish((err as Error).message.split('\n')[0]));
  });
  cmd.run();
  return {
    started,
    exited,
    pid: () => proc?.pid,
    async stop(graceMs = 1500) {
      if (done) return;
      const gone = exited.then(() => true);
      const within = (ms: number) =>
        Promise.race([gone, new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
      if (typeof spec.source === 'string') {
        try {
          proc?.stdin?.write('q');
        } catch {
          /* stdin closed: escalate */
        }
      } else {
        spec.source.unpipe?.();
        proc?.stdin?.end();
      }
      if (await within(graceMs)) return;
      proc?.kill('SIGTERM');
      if (await within(graceMs)) return;
      proc?.kill('SIGKILL');
      await within(graceMs);
    },
  };
}
