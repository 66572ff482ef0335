/**
 * Helper process for bench/stream.ts: N HTTP-FLV viewers of the gate, each with its own grant,
 * counting bytes only (so the agent's CPU is measured in the parent without the viewers in it).
 * Reads {url, grants, seconds} as JSON on argv[2]; prints {bytes, seconds (since the first byte), viewers, okViewers}.
 */
import { request } from 'node:http';

const { url, grants, seconds } = JSON.parse(process.argv[2] ?? '{}') as {
  url: string;
  grants: string[];
  seconds: number;
};
let bytes = 0;
let ok = 0;
let firstAt = 0;
const reqs = grants.map((g) =>
  request(url, { headers: { authorization: `Bearer ${g}` } }, (res) => {
    if (res.statusCode === 200) ok++;
    res.on('data', (d: Buffer) => {
      if (!firstAt) {
        firstAt = performance.now();
        // Tells the parent to start its CPU window now (this process's start-up is not the agent's).
        process.stdout.write('go\n');
      }
      bytes += d.length;
    });
  })
    .on('error', () => undefined)
    .end(),
);
setTimeout(() => {
  for (const r of reqs) r.destroy();
  const seconds = firstAt ? (performance.now() - firstAt) / 1000 : 0;
  process.stdout.write(JSON.stringify({ bytes, seconds, viewers: grants.length, okViewers: ok }) + '\n');
  process.exit(0);
}, seconds * 1000);
