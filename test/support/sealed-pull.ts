/**
 * Pulls a (sealed) stream back out of a relay as FLV tags: over HTTP-FLV (node-media-server) or
 * through `ffmpeg -c copy` from RTMP (nginx-rtmp has no HTTP-FLV). Collects video tag bodies as
 * they arrive; the caller opens them with a viewer key and decides what counts.
 */
import http from 'node:http';
import { spawn } from 'node:child_process';
import { FlvTagReader } from '../../agent/sealing/flv-tags.ts';

export interface PulledStream {
  video: Buffer[];
  /** Resolves when `n` video tags arrived (false after `ms`). */
  waitFor(n: number, ms: number): Promise<boolean>;
  close(): void;
}

function collector(): { video: Buffer[]; reader: FlvTagReader; waitFor: PulledStream['waitFor'] } {
  const video: Buffer[] = [];
  const reader = new FlvTagReader(
    () => undefined,
    (t) => {
      if (t.type === 9) video.push(t.body);
    },
  );
  const waitFor = async (n: number, ms: number) => {
    const end = Date.now() + ms;
    while (video.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return video.length >= n;
  };
  return { video, reader, waitFor };
}

export function pullHttpFlv(url: string): PulledStream {
  const c = collector();
  const req = http.get(url, (res) => res.on('data', (d: Buffer) => c.reader.push(d)));
  req.on('error', () => undefined);
  return { video: c.video, waitFor: c.waitFor, close: () => req.destroy() };
}

export function pullRtmpWithFfmpeg(url: string): PulledStream {
  const c = collector();
  const ff = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-analyzeduration',
      '500000',
      '-rw_timeout',
      '3000000',
      '-i',
      url,
      '-c',
      'copy',
      '-f',
      'flv',
      'pipe:1',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  ff.stdout!.on('data', (d: Buffer) => c.reader.push(d));
  return { video: c.video, waitFor: c.waitFor, close: () => ff.kill('SIGKILL') };
}
