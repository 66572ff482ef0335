/**
 * Helper process for bench/stream.ts: N HTTP-FLV viewers of the gate, each with its own grant,
 * counting bytes only (so the agent's CPU is measured in the parent without the viewers in it).
 * Reads {url, grants, seconds} as JSON on argv[2]; prints {bytes, viewers, okViewers}.
 */
import { request } from 'node:http';

const { url, grants, seconds } = JSON.parse(process.argv[2] ?? '{}') as { url: string; grants: string[]; seconds: number };
let bytes = 0;
let ok = 0;
const reqs = grants.map((g) =>
  request(url, { headers: { authorization: `Bearer ${g}` } }, (res) => {
    if (res.statusCode === 200) ok++;
    res.on('data', (d: Buffer) => (bytes += d.length));
  }).on('error', () => undefined).end(),
);
setTimeout(() => {
  for (const r of reqs) r.destroy();
  process.stdout.write(JSON.stringify({ bytes, viewers: grants.length, okViewers: ok }) + '\n');
  process.exit(0);
}, seconds * 1000);
