/**
 * One short-lived ffmpeg run with bytes in on stdin and bytes out on stdout, bounded in time and
 * output size: the snapshot encoder and the clip muxer (stream copy) use it. The output stays in
 * memory (it is sealed before anything is written), never on disk in the clear.
 * Must never leave a process behind (timeout and abort kill it), nor let stdout grow past its cap.
 */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { LenscapError } from '../errors.ts';
import type { EventsCode } from './codes.ts';

export interface FfmpegRun {
  readonly pid: number | undefined;
  /** Write input here; `end()` it when done. Write errors (EPIPE after a failure) are swallowed. */
  readonly stdin: Writable;
  /** stdout, once ffmpeg exits 0; rejects with `code` otherwise. */
  readonly done: Promise<Buffer>;
  kill(): void;
}

export function runFfmpeg(
  ffmpegPath: string,
  args: string[],
  o: { code: EventsCode; timeoutMs: number; maxOutBytes: number },
): FfmpegRun {
  const child = spawn(ffmpegPath, ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // `-nostdin` only stops ffmpeg reading keys from the terminal; `pipe:0` still reads our input.
  const out: Buffer[] = [];
  let outBytes = 0;
  let err = '';
  let failure: string | undefined;
  child.stdin.on('error', () => undefined);
  child.stdout.on('data', (b: Buffer) => {
    outBytes += b.length;
    if (outBytes > o.maxOutBytes) {
      failure ??= `output over ${o.maxOutBytes} bytes`;
      child.kill('SIGKILL');
      return;
    }
    out.push(b);
  });
  child.stderr.on('data', (b: Buffer) => {
    if (err.length < 2000) err += b.toString('utf8');
  });
  const timer = setTimeout(() => {
    failure ??= `ffmpeg took longer than ${o.timeoutMs} ms`;
    child.kill('SIGKILL');
  }, o.timeoutMs);
  timer.unref();
  const done = new Promise<Buffer>((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new LenscapError(o.code, `ffmpeg did not start: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && !failure) resolve(Buffer.concat(out));
      else
        reject(
          new LenscapError(
            o.code,
            failure ?? `ffmpeg exited ${code ?? signal}: ${err.trim().split('\n').pop() ?? ''}`,
          ),
        );
    });
  });
  return {
    pid: child.pid,
    stdin: child.stdin,
    done,
    kill: () => {
      failure ??= 'aborted';
      child.kill('SIGKILL');
    },
  };
}
