/**
 * Pulls a (sealed) stream back out of a relay as FLV tags: over HTTP-FLV (node-media-server) or
 * over RTMP play (nginx-rtmp has no HTTP-FLV). Collects video tag bodies as
 * they arrive; the caller opens them with a viewer key and decides what counts.
 */
import http from 'node:http';
import { spawn } from 'node:child_process';
import { WebSocket } from 'ws';
import { openRtmp } from '../agent/push/rtmp/client.ts';
import { encodeTag, FlvTagReader, type FlvTagOut } from '../agent/sealing/flv-tags.ts';
import { ffmpegPath as agentFfmpeg } from './ffmpeg.ts';
import { reached } from './wait.ts';

export interface PulledStream {
  video: Buffer[];
  /** Every tag as pulled (script, video), in order. */
  tags: FlvTagOut[];
  /** Resolves when `n` video tags arrived (false after `ms`). */
  waitFor(n: number, ms: number): Promise<boolean>;
  close(): void;
}

function collector(): {
  video: Buffer[];
  tags: FlvTagOut[];
  reader: FlvTagReader;
  waitFor: PulledStream['waitFor'];
} {
  const video: Buffer[] = [];
  const tags: FlvTagOut[] = [];
  const reader = new FlvTagReader(
    () => undefined,
    (t) => {
      tags.push(t);
      if (t.type === 9) video.push(t.body);
    },
  );
  const waitFor = (n: number, ms: number) => reached(() => video.length >= n, ms);
  return { video, tags, reader, waitFor };
}

export function pullHttpFlv(url: string, headers: Record<string, string> = {}): PulledStream {
  const c = collector();
  const req = http.get(url, { headers }, (res) => res.on('data', (d: Buffer) => c.reader.push(d)));
  req.on('error', () => undefined);
  return { video: c.video, tags: c.tags, waitFor: c.waitFor, close: () => req.destroy() };
}

/** WebSocket-FLV (the gate's second transport): each binary message is FLV bytes. */
export function pullWsFlv(url: string, headers: Record<string, string> = {}): PulledStream {
  const c = collector();
  const ws = new WebSocket(url, { headers });
  ws.binaryType = 'nodebuffer';
  ws.on('message', (d: Buffer) => c.reader.push(d));
  ws.on('error', () => undefined);
  return { video: c.video, tags: c.tags, waitFor: c.waitFor, close: () => ws.terminate() };
}

/**
 * RTMP play with the agent's own RTMP client (nginx-rtmp has no HTTP-FLV). Not ffmpeg: its FLV
 * muxer refuses to start on a sealed stream unless a ciphertext happens to parse as a slice
 * header ("dimensions not set"), which made an ffmpeg puller pass or fail by chance.
 */
export function pullRtmp(url: string): PulledStream {
  const c = collector();
  const client = openRtmp({
    url,
    role: 'play',
    timeoutMs: 15_000,
    onTag: (t) => {
      const ts = Buffer.alloc(4);
      ts.writeUIntBE(t.timestamp & 0xffffff, 0, 3);
      ts[3] = t.timestamp >>> 24;
      const tag = { type: t.type, ts, body: t.body };
      c.tags.push(tag);
      if (t.type === 9) c.video.push(t.body);
    },
  });
  return { video: c.video, tags: c.tags, waitFor: c.waitFor, close: () => void client.close() };
}

/** An FLV file (video only) from tags: for handing a capture to a plain decoder. */
export function flvFile(tags: FlvTagOut[]): Buffer {
  const header = Buffer.from([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 9, 0, 0, 0, 0]);
  return Buffer.concat([header, ...tags.map((t) => encodeTag(t.type, t.ts, t.body))]);
}

/**
 * Decodes an FLV with a plain ffmpeg (no key) to 64x36 gray frames and returns each frame's luma
 * standard deviation: a concealed sealed frame is flat (≈ 0), a picture is not. Bounded at 20 s.
 */
export async function decodeLumaStddev(flv: Buffer, ffmpegPath = agentFfmpeg()): Promise<number[]> {
  const ff = spawn(
    ffmpegPath,
    [
      '-hide_banner',
      '-loglevel',
      'quiet',
      '-f',
      'flv',
      '-i',
      'pipe:0',
      '-vf',
      'scale=64:36',
      '-pix_fmt',
      'gray',
      '-f',
      'rawvideo',
      'pipe:1',
    ],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  const out: Buffer[] = [];
  ff.stdout!.on('data', (d: Buffer) => out.push(d));
  ff.stdin!.on('error', () => undefined);
  ff.stdin!.end(flv);
  const timer = setTimeout(() => ff.kill('SIGKILL'), 20_000);
  await new Promise((r) => ff.once('close', r));
  clearTimeout(timer);
  const all = Buffer.concat(out);
  const n = 64 * 36;
  const res: number[] = [];
  for (let o = 0; o + n <= all.length; o += n) {
    let sum = 0;
    let sq = 0;
    for (let i = o; i < o + n; i++) {
      sum += all[i]!;
      sq += all[i]! * all[i]!;
    }
    const mean = sum / n;
    res.push(Math.sqrt(Math.max(0, sq / n - mean * mean)));
  }
  return res;
}
