/**
 * Helper process for bench/viewers.ts: holds HTTP(S)-FLV viewers open and reads their bytes as they
 * come (a viewer that keeps up), so the hub's memory is measured with live, drained sessions.
 * stdin: one JSON line per step, `{"url": "...", "grants": ["...", ...]}` — opens one viewer per
 * grant (Bearer header; the bare hub ignores it). stdout: one JSON line per step once every viewer
 * of that step got its first bytes (or 20 s passed): `{"open": total, "ok": with 200 and bytes}`.
 * `{"close": k}` closes the k viewers opened last and answers the same way 1 s later.
 * TLS is not verified (loopback bench; the gate's certificate is the device's). Exits when stdin closes.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';

const open: ClientRequest[] = [];
let ok = 0;
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const msg = JSON.parse(line) as { url: string; grants: string[] } | { close: number };
  const report = () => process.stdout.write(`${JSON.stringify({ open: open.length, ok })}\n`);
  if ('close' in msg) {
    for (const r of open.splice(Math.max(0, open.length - msg.close))) {
      r.destroy();
      ok--;
    }
    setTimeout(report, 1000);
    return;
  }
  const { url, grants } = msg;
  let waiting = grants.length;
  if (waiting === 0) return report();
  const timer = setTimeout(() => ((waiting = -1), report()), 20_000);
  const done = () => {
    if (--waiting !== 0) return;
    clearTimeout(timer);
    report();
  };
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  for (const g of grants) {
    let first = true;
    const settle = () => {
      if (!first) return;
      first = false;
      done();
    };
    const req = request(
      url,
      { headers: { authorization: `Bearer ${g}` }, rejectUnauthorized: false, agent: false },
      (res) => {
        res.on('data', () => {
          if (!first) return;
          first = false;
          if (res.statusCode === 200) ok++;
          done();
        });
        res.on('end', () => settle());
      },
    );
    req.on('error', () => settle());
    req.end();
    open.push(req);
  }
});
rl.on('close', () => {
  for (const r of open) r.destroy();
  process.exit(0);
});
