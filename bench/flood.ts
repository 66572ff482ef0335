/**
 * A refusal flood through the real viewer gate over real HTTP, from thousands of distinct source
 * addresses (127.x.y.z: all of 127/8 is loopback on Linux), against the real grant gate, the real
 * on-disk event queue and the real pino logger (its bytes counted). The camera is offline, with the
 * cloud's misroute alarm (`wrong_audience`) queued before the flood. Measures the agent's log
 * volume per minute of flood (goal ≤ 1 MB), the refusals served per second, whether valid grants
 * are still accepted during the flood, and whether the alarm is still queued afterwards.
 * The hub is left out: every flood request is refused before any tap exists, and the valid grants
 * only need their 200 head (a tap that hands over one empty keyframe stands in for it).
 * Usage: npx tsx bench/flood.ts [--seconds N] [--sources N] [--concurrency N] [--json FILE]
 */
import { systemClock } from '../agent/clock.ts';
import { request } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createGrantGate } from '../agent/grants/grant-gate.ts';
import { EventQueue } from '../agent/audit/event-queue.ts';
import { loadConfig } from '../agent/config/load.ts';
import { createLogger } from '../agent/log.ts';
import { stateLayout } from '../agent/state-layout.ts';
import { createGate } from '../agent/gate/gate.ts';
import { createPrivacyState } from '../agent/privacy/state.ts';
import { createNoSwitch } from '../drivers/privacy/none.ts';
import { loadOrCreateSigningKeys } from '../scripts/dev-cloud/signing-keys.ts';
import { mintGrant, signBindingRecord } from '../scripts/dev-cloud/mint.ts';
import { writeFigures } from './_json.ts';
import { noCaptureStream } from '../harness/fleet/camera.ts';

const args = parseArgs({
  options: {
    json: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    sources: { type: 'string', default: '10100' },
    concurrency: { type: 'string', default: '32' },
  },
}).values;
const STARTED = Date.now();
const SECONDS = Number(args.seconds);
const SOURCES = Number(args.sources);
const CONCURRENCY = Number(args.concurrency);
const SERIAL = 'CAM-FLOOD';

const dir = mkdtempSync(join(tmpdir(), 'lenscap-bench-flood-'));
const keys = await loadOrCreateSigningKeys(join(dir, 'dev'));
const paths = stateLayout(join(dir, 'state'));
mkdirSync(paths.trustDir, { recursive: true, mode: 0o700 });
writeFileSync(paths.trustRoot, JSON.stringify(keys.trustRootJwk));
writeFileSync(paths.trustBundle, keys.trustBundle);
writeFileSync(paths.binding, signBindingRecord(keys.binding, { serial: SERIAL, owner: 'alice', version: 1 }));

let logBytes = 0;
const logger = createLogger({
  level: 'info',
  serial: SERIAL,
  destination: new Writable({
    write(chunk: Buffer, _enc, cb) {
      logBytes += chunk.length;
      cb();
    },
  }),
});
const { config } = loadConfig(undefined, {});
const clock = systemClock;
const queue = EventQueue.open({
  file: paths.eventQueue,
  serial: SERIAL,
  ...config.cloud.eventQueue,
  clock,
  logger,
});
const grants = createGrantGate({
  serial: SERIAL,
  grants: config.grants,
  relayAllowList: [],
  paths,
  clock,
  logger,
  events: queue,
  isPrivacyOn: () => false,
});
const privacy = createPrivacyState({
  initial: false,
  hardware: createNoSwitch(),
  serial: SERIAL,
  clock,
  logger,
});
const gate = createGate({
  serial: SERIAL,
  config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false },
  grants,
  stream: noCaptureStream,
  privacy,
  clock,
  logger,
});
const { port } = await gate.listen();
const mint = (req: Record<string, unknown> = {}) =>
  mintGrant(keys.issuer, { serial: SERIAL, viewer: 'alice', now: Date.now() / 1000, ...req }).token;

function get(localAddress: string, token: string | undefined): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        path: `/live/${SERIAL}.flv`,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        agent: false,
      },
      (res) => {
        resolve(res.statusCode ?? 0);
        res.destroy();
      },
    );
    req.on('error', () => resolve(0));
    req.end();
  });
}

// The offline camera's queued misroute alarm.
const misroute = await get('127.0.0.2', mint({ serial: 'CAM-OTHER', viewer: 'bob' }));
const a = mint().split('.');
const b = mint({ viewer: 'bob' }).split('.');
const forged = `${a[0]}.${a[1]}.${b[2]}`;

const logBefore = logBytes;
const byStatus: Record<string, number> = {};
let sent = 0;
let validOk = 0;
let validTried = 0;
const validMs: number[] = [];
const until = Date.now() + SECONDS * 1000;
let nextValid = Date.now() + 1000;
async function worker(w: number): Promise<void> {
  for (let i = w; Date.now() < until; i += CONCURRENCY) {
    if (w === 0 && Date.now() >= nextValid) {
      nextValid += 1000;
      validTried++;
      const t0 = performance.now();
      const st = await get('127.0.0.3', mint());
      validMs.push(performance.now() - t0);
      if (st === 200) validOk++;
      continue;
    }
    const n = i % SOURCES;
    const addr = `127.${1 + ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255 || 1}`;
    const kind = i % 3;
    const st = await get(addr, kind === 0 ? `junk.${i}.x` : kind === 1 ? undefined : forged);
    byStatus[st] = (byStatus[st] ?? 0) + 1;
    sent++;
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
const floodLog = logBytes - logBefore;
const perMinute = (floodLog * 60) / SECONDS;

await gate.close();
grants.close();
const delivered: Array<Record<string, unknown>> = [];
await queue.deliver(async (json) => void delivered.push(JSON.parse(json) as Record<string, unknown>));
queue.close();
rmSync(dir, { recursive: true, force: true });
const alarmKept = delivered.some((e) => e.reason === 'wrong_audience' && e.claimedAud === 'CAM-OTHER');
const dropped = delivered
  .filter((e) => e.type === 'events_dropped')
  .reduce((n, e) => n + Number((e.data as { count?: number }).count ?? 0), 0);
validMs.sort((x, y) => x - y);

const figures = {
  seconds: SECONDS,
  sources: SOURCES,
  requests: sent,
  requestsPerSecond: Math.round(sent / SECONDS),
  byStatus: Object.fromEntries(Object.entries(byStatus).map(([k, v]) => [k, v])),
  logBytes: floodLog,
  logBytesPerMinute: Math.round(perMinute),
  eventsDelivered: delivered.length,
  eventsDropped: dropped,
  misrouteStatus: misroute,
  misrouteAlarmKept: alarmKept,
  validAccepted: validOk,
  validTried,
  validP50Ms: Math.round(validMs[Math.floor(validMs.length / 2)] ?? NaN),
};
process.stdout.write(
  [
    `flood: ${sent} requests in ${SECONDS} s from ${SOURCES} source addresses (${figures.requestsPerSecond}/s), statuses ${JSON.stringify(byStatus)}`,
    `agent log: ${floodLog} bytes = ${(perMinute / 1024).toFixed(1)} KiB per minute of flood (goal ≤ 1024 KiB) — ${perMinute <= 1024 * 1024 ? 'goal met' : 'GOAL MISSED'}`,
    `events: ${delivered.length} delivered on reconnect, ${dropped} dropped; misroute to event queue kept: ${alarmKept}`,
    `valid grants during the flood: ${validOk}/${validTried} accepted, p50 ${figures.validP50Ms} ms`,
  ].join('\n') + '\n',
);
writeFigures(args.json, 'flood', STARTED, figures);
process.exit(alarmKept && perMinute <= 1024 * 1024 && validOk === validTried ? 0 : 1);
