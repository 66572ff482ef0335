/**
 * Reconnect storm: N light clients (the cloud link only; real TLS, real mosquitto on loopback) come
 * online, the broker stops for an outage, restarts, and the return is measured per second: peak
 * connects/s, peak attempts/s, time to 50/99/100 % back. Once with lenscap's policy (full-jitter
 * backoff, defaults from the config schema), once with mqtt.js's default fixed 1 s retry.
 * Goal (issue 18): peak ≤ 8 % of the fleet per second in each of five runs, 99 % back within 2× the cap
 * (issue 4 asked ≤ 10 %). The load average is printed and written with the figures (`loadAvg1`).
 * Usage: npx tsx bench/storm.ts [--clients 1000] [--outage 30] [--settle 30] [--policy both|lenscap|mqttjs]
 *        [--json FILE] [--pki FILE (reuse the throwaway certificates across runs)]
 *   On a broker cluster (./_storm-cluster.ts): --broker rabbitmq [--nodes 3] [--kill-node] [--clients 1000]
 *   By simulation (./_storm-sim.ts): --simulate 100000 [--connect-budget 500] [--outage 30]
 * Must never leave a broker or client behind (everything is closed in finally blocks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { systemClock, systemRandom } from '../agent/clock.ts';
import { configSchema } from '../agent/config/schema.ts';
import { silentLogger } from '../agent/log.ts';
import { stateLayout } from '../agent/state-layout.ts';
import { CommandRegistry } from '../agent/cloud/commands.ts';
import { createCloudLink, type CloudLink } from '../agent/cloud/link.ts';
import { freePort } from '../scripts/dev-cloud/broker-mosquitto.ts';
import { findBinary } from '../harness/requires.ts';
import { issue, issueMany, makeCa } from '../harness/forge-pki.ts';
import { writeFigures, type Figures } from './_json.ts';
import { clusterStorm } from './_storm-cluster.ts';
import { recommend, simulate, type SimResult } from '../harness/storm-sim.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    outage: { type: 'string', default: '30' },
    settle: { type: 'string', default: '30' },
    policy: { type: 'string', default: 'both' },
    json: { type: 'string' },
    broker: { type: 'string', default: 'mosquitto' },
    nodes: { type: 'string', default: '3' },
    'kill-node': { type: 'boolean', default: false },
    simulate: { type: 'string' },
    'connect-budget': { type: 'string', default: '500' },
    /** Reuse the test CA and certificates from this file (written 0600 on the first run). */
    pki: { type: 'string' },
  },
});
const STARTED = Date.now();
const N = Number(values.clients);
const OUTAGE_S = Number(values.outage);
const SETTLE_S = Number(values.settle);
const defaults = configSchema.parse({}).cloud;
const CAP_MS = defaults.backoff.capMs;
/** Links started at a time while the fleet forms (before the outage). */
const RAMP_BATCH = 200;
/** Issue 18: ≤ 8 % of the fleet per second. */
const PEAK_GOAL = 0.08;

const stormName = (i: number) => `STORM-${String(i).padStart(5, '0')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Broker {
  stop(): Promise<void>;
}

async function startMosquitto(dir: string, port: number): Promise<Broker> {
  const bin = findBinary('mosquitto');
  if (!bin) throw new Error('storm needs mosquitto (apt-get install mosquitto)');
  // No per-serial ACL here: the storm measures connections, the ACL is covered by
  // test/cloud/link-mosquitto.test.ts. The client id is the certificate CN (as in production), so
  // every storm client has a certificate of its own (issueMany: one key, N certificates).
  const conf = [
    process.getuid?.() === 0 ? 'user root' : '',
    'per_listener_settings false',
    'persistence false',
    'allow_anonymous false',
    'log_dest none',
    'max_connections -1',
    `listener ${port} 127.0.0.1`,
    `cafile ${join(dir, 'ca.pem')}`,
    `certfile ${join(dir, 'broker.crt')}`,
    `keyfile ${join(dir, 'broker.key')}`,
    'require_certificate true',
    'use_identity_as_username true',
    'use_username_as_clientid true',
    'tls_version tlsv1.2',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'mosquitto.conf'), conf);
  const child: ChildProcess = spawn(bin, ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => (s.destroy(), r(false)));
    });
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('mosquitto did not start');
    await sleep(50);
  }
  return {
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL'); // an outage, not a polite shutdown
      await exited;
    },
  };
}

interface Fleet {
  online(): number;
  /** Connection attempts so far (successful or not). */
  attempts(): number;
  /** Called with the time of every successful (re)connect. */
  onConnect(fn: (t: number) => void): void;
  /** Marks the broker's return: stragglers() reports on the clients not back since then. */
  mark?(): void;
  /** The clients with no connect since mark(): what their reconnect policy did meanwhile. */
  stragglers?(): string[];
  close(): Promise<void>;
}

function lenscapFleet(url: string, root: string): Fleet {
  const config = configSchema.parse({ cloud: { url } });
  const registry = new CommandRegistry();
  const events = { emit() {}, deliver: async () => {}, onEnqueued() {} };
  const listeners: Array<(t: number) => void> = [];
  const links: CloudLink[] = [];
  const backSinceMark: boolean[] = [];
  let failedAtMark: number[] = [];
  let markedAt = 0;
  for (let i = 0; i < N; i++) {
    const link = createCloudLink({
      config,
      serial: stormName(i),
      paths: stateLayout(join(root, stormName(i))),
      clock: systemClock,
      random: systemRandom,
      logger: silentLogger(),
      events,
      commands: registry,
    });
    link.on('online', () => {
      backSinceMark[i] = true;
      listeners.forEach((f) => f(Date.now()));
    });
    links.push(link);
  }
  // The fleet forms in batches (setup, not the measurement): 1,000 mTLS handshakes in one process
  // within the 10 s initial spread time out on a saturated machine and back off for minutes.
  void (async () => {
    for (let b = 0; b < N; b += RAMP_BATCH) {
      const batch = links.slice(b, b + RAMP_BATCH);
      batch.forEach((l) => l.start());
      const until = Date.now() + 60_000;
      while (batch.some((l) => !l.isOnline()) && Date.now() < until) await sleep(250);
    }
  })();
  return {
    online: () => links.filter((l) => l.isOnline()).length,
    attempts: () => links.reduce((n, l) => n + l.counters().connects + l.counters().failedAttempts, 0),
    onConnect: (fn) => listeners.push(fn),
    mark() {
      markedAt = Date.now();
      failedAtMark = links.map((l) => l.counters().failedAttempts);
      backSinceMark.fill(false, 0, N);
    },
    stragglers() {
      const out: string[] = [];
      links.forEach((l, i) => {
        if (backSinceMark[i]) return;
        const d = l.lastDecision();
        out.push(
          `${stormName(i)}: online ${l.isOnline()}, ${l.counters().failedAttempts - failedAtMark[i]!} failed attempts since the restart, last decision ${d ? `${d.reason} ${d.delayMs} ms (attempt ${d.attempt})` : 'none'}, ${((Date.now() - markedAt) / 1000).toFixed(0)} s after the restart`,
        );
      });
      return out;
    },
    close: async () => void (await Promise.all(links.map((l) => l.stop()))),
  };
}

function mqttjsFleet(url: string, pems: ReadonlyArray<{ key: string; cert: string; ca: string }>): Fleet {
  const listeners: Array<(t: number) => void> = [];
  const clients: MqttClient[] = [];
  let attempts = 0;
  for (let i = 0; i < N; i++) {
    // mqtt.js defaults: reconnectPeriod 1000 ms, fixed, no jitter.
    const c = mqtt.connect(url, {
      ...pems[i]!,
      clientId: stormName(i),
      protocolVersion: 5,
    });
    attempts++;
    c.on('reconnect', () => attempts++);
    c.on('connect', () => listeners.forEach((f) => f(Date.now())));
    c.on('error', () => undefined);
    clients.push(c);
  }
  return {
    online: () => clients.filter((c) => c.connected).length,
    attempts: () => attempts,
    onConnect: (fn) => listeners.push(fn),
    close: async () => void (await Promise.all(clients.map((c) => c.endAsync(true)))),
  };
}

interface Result {
  policy: string;
  peakPerSec: number;
  peakAttemptsPerSec: number;
  t50: number | null;
  t99: number | null;
  t100: number | null;
  back: number;
  curve: number[];
  attemptsDuringOutage: number;
  onlineAtEnd: number;
  /** Connects that landed before startMosquitto saw the port open (missed when counted from there). */
  beforeProbe: number;
  /** lenscap: the clients not back within the window, and why (their policy's last decision). */
  stragglers: string[];
}

async function run(
  policy: 'lenscap' | 'mqttjs',
  work: string,
  pems: ReadonlyArray<{ key: string; cert: string; ca: string }>,
): Promise<Result> {
  const port = await freePort();
  const url = `mqtts://127.0.0.1:${port}`;
  let broker = await startMosquitto(work, port);
  const fleet = policy === 'lenscap' ? lenscapFleet(url, join(work, 'state')) : mqttjsFleet(url, pems);
  try {
    // Setup, not the measurement: on a saturated machine 1,000 mTLS handshakes in the first 10 s time
    // out and back off (a run at load 16 had 144/1000 up after 90 s), so give the fleet time to form.
    const upFrom = Date.now();
    const upBy = upFrom + 300_000;
    while (fleet.online() < N) {
      if (Date.now() > upBy) throw new Error(`${policy}: only ${fleet.online()}/${N} online after 300 s`);
      await sleep(250);
    }
    process.stderr.write(`storm ${policy}: fleet formed in ${((Date.now() - upFrom) / 1000).toFixed(0)} s\n`);
    // lenscap: a fleet in steady state (its counter resets only after 30 s up); mqtt.js has no state.
    const settle = policy === 'lenscap' ? SETTLE_S : 0;
    process.stderr.write(`storm ${policy}: ${N} online; settling ${settle} s\n`);
    await sleep(settle * 1000);
    await broker.stop();
    const a0 = fleet.attempts();
    process.stderr.write(`storm ${policy}: broker down for ${OUTAGE_S} s\n`);
    await sleep(OUTAGE_S * 1000);
    const attemptsDuringOutage = fleet.attempts() - a0;
    // t0 is the broker's return (its spawn), and connects are counted from then: a client that got
    // in while startMosquitto was still probing the port is back too (counting from after that
    // probe lost such clients under load — they showed as stragglers although they were online).
    const t0 = Date.now();
    const times: number[] = [];
    fleet.onConnect((t) => times.push(t - t0));
    fleet.mark?.();
    broker = await startMosquitto(work, port);
    const beforeProbe = times.length;
    const attemptSeconds: number[] = [];
    let lastAttempts = fleet.attempts();
    const limit = t0 + 2 * CAP_MS + 30_000;
    while (times.length < N && Date.now() < limit) {
      await sleep(1000);
      const a = fleet.attempts();
      attemptSeconds.push(a - lastAttempts);
      lastAttempts = a;
    }
    times.sort((x, y) => x - y);
    const stragglers = fleet.stragglers?.() ?? [];
    const curve: number[] = [];
    for (const t of times) curve[Math.floor(t / 1000)] = (curve[Math.floor(t / 1000)] ?? 0) + 1;
    for (let i = 0; i < curve.length; i++) curve[i] ??= 0;
    const at = (q: number) => (times.length >= Math.ceil(q * N) ? times[Math.ceil(q * N) - 1]! / 1000 : null);
    return {
      policy,
      peakPerSec: Math.max(0, ...curve),
      peakAttemptsPerSec: Math.max(0, ...attemptSeconds),
      t50: at(0.5),
      t99: at(0.99),
      t100: at(1),
      // Distinct clients back (a client that connected twice counts once) where the fleet knows.
      back: fleet.stragglers ? N - stragglers.length : times.length,
      curve,
      attemptsDuringOutage,
      onlineAtEnd: fleet.online(),
      beforeProbe,
      stragglers,
    };
  } finally {
    await fleet.close().catch(() => undefined);
    await broker.stop();
  }
}

function fmt(r: Result): string {
  const s = (v: number | null) => (v === null ? 'not reached' : `${v.toFixed(1)} s`);
  // 5 s buckets keep the line readable; the peak above is per second.
  const buckets: number[] = [];
  r.curve.forEach((v, i) => (buckets[Math.floor(i / 5)] = (buckets[Math.floor(i / 5)] ?? 0) + v));
  const curve = buckets.map((v, i) => `${i * 5}-${i * 5 + 5}s:${v ?? 0}`).join(' ');
  return [
    `policy ${r.policy}: ${r.back}/${N} back`,
    `  peak connects/s ${r.peakPerSec} (${((r.peakPerSec / N) * 100).toFixed(1)} % of the fleet)`,
    `  peak attempts/s after restart ${r.peakAttemptsPerSec}; attempts during the ${OUTAGE_S} s outage ${r.attemptsDuringOutage}`,
    `  time to 50 % ${s(r.t50)}, 99 % ${s(r.t99)}, 100 % ${s(r.t100)}`,
    `  connects after restart per 5 s: ${curve}`,
    `  online at the end of the window: ${r.onlineAtEnd}/${N}; connects before the bench's port probe returned: ${r.beforeProbe}`,
    ...(r.stragglers.length
      ? [
          `  not back within the window (${r.stragglers.length}):`,
          ...r.stragglers.slice(0, 20).map((x) => `    ${x}`),
        ]
      : []),
  ].join('\n');
}

interface StormPki {
  ca: { cert: string };
  broker: { key: string; cert: string };
  clients: Array<{ key: string; cert: string }>;
}

/**
 * A throwaway CA, the broker's and N clients' certificates. Issuing 1,000 with node-forge takes
 * minutes on a loaded machine: `--pki FILE` keeps them for repeated runs (test keys, never committed).
 */
function loadOrIssuePki(names: string[]): StormPki {
  if (values.pki && existsSync(values.pki)) {
    const p = JSON.parse(readFileSync(values.pki, 'utf8')) as StormPki;
    if (p.clients.length >= names.length) return { ...p, clients: p.clients.slice(0, names.length) };
  }
  const ca = makeCa('storm CA');
  const pki: StormPki = {
    ca: { cert: ca.cert },
    broker: issue(ca, 'localhost', 'server'),
    clients: issueMany(ca, names),
  };
  if (values.pki) writeFileSync(values.pki, JSON.stringify(pki), { mode: 0o600 });
  return pki;
}

async function main() {
  const loadAvgStart = loadavg()[0]!;
  const work = mkdtempSync(join(tmpdir(), 'lenscap-storm-'));
  try {
    const names = Array.from({ length: N }, (_, i) => stormName(i));
    const { ca, broker, clients } = loadOrIssuePki(names);
    writeFileSync(join(work, 'ca.pem'), ca.cert);
    writeFileSync(join(work, 'broker.crt'), broker.cert);
    writeFileSync(join(work, 'broker.key'), broker.key, { mode: 0o600 });
    clients.forEach((client, i) => {
      const paths = stateLayout(join(work, 'state', names[i]!));
      mkdirSync(paths.identityDir, { recursive: true });
      mkdirSync(paths.cloudDir, { recursive: true });
      writeFileSync(paths.deviceKey, client.key, { mode: 0o600 });
      writeFileSync(paths.deviceCert, client.cert);
      writeFileSync(paths.brokerCa, ca.cert);
    });
    const pems = clients.map((c) => ({ key: c.key, cert: c.cert, ca: ca.cert }));

    console.log(
      `reconnect storm: ${N} clients, real TLS (RSA 2048, mTLS) to mosquitto on loopback, broker killed for ${OUTAGE_S} s`,
    );
    console.log(
      `lenscap policy: base ${defaults.backoff.baseMs} ms, cap ${CAP_MS} ms, full jitter, reset after ${defaults.backoff.resetAfterMs} ms up, initial delay ≤ ${defaults.backoff.initialDelayMaxMs} ms, after a drop ≥ max(${defaults.backoff.dropDelayMaxMs} ms, ${defaults.backoff.outageSpread} × time down)`,
    );
    console.log(
      `goal: peak ≤ ${Math.floor(N * PEAK_GOAL)} connects/s (${PEAK_GOAL * 100} %), 99 % back within ${(2 * CAP_MS) / 1000} s (2× cap); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores\n`,
    );
    const policies =
      values.policy === 'both' ? (['lenscap', 'mqttjs'] as const) : [values.policy as 'lenscap' | 'mqttjs'];
    const results: Result[] = [];
    for (const p of policies) {
      const r = await run(p, work, pems);
      results.push(r);
      console.log(fmt(r) + '\n');
    }
    const l = results.find((r) => r.policy === 'lenscap');
    if (l) {
      const peakOk = l.peakPerSec <= N * PEAK_GOAL;
      const t99Ok = l.t99 !== null && l.t99 * 1000 <= 2 * CAP_MS;
      console.log(
        `lenscap goal: peak ${peakOk ? 'met' : 'MISSED'}, 99 % within 2× cap ${t99Ok ? 'met' : 'MISSED'}`,
      );
    }
    const figs = (r: Result): Figures => ({
      clients: N,
      backFraction: r.back / N,
      peakFraction: r.peakPerSec / N,
      p99BackS: r.t99,
      p50BackS: r.t50,
      attemptsDuringOutage: r.attemptsDuringOutage,
      stragglers: r.stragglers.length,
      connectsBeforeProbe: r.beforeProbe,
    });
    const m = results.find((r) => r.policy === 'mqttjs');
    writeFigures(values.json, 'storm', STARTED, {
      ...(l ? figs(l) : { clients: N }),
      outageS: OUTAGE_S,
      capS: CAP_MS / 1000,
      loadAvg1: Math.round(loadAvgStart * 10) / 10,
      loadAvg1End: Math.round(loadavg()[0]! * 10) / 10,
      ...(m ? { baseline: figs(m) } : {}),
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function simulation() {
  const devices = Number(values.simulate);
  const budget = Number(values['connect-budget']);
  if (!(devices > 0) || !(budget > 0))
    throw new Error('--simulate N and --connect-budget R must be positive');
  const base = { ...defaults.backoff, followServerReference: false };
  const o = { devices, budget, outageS: OUTAGE_S };
  console.log(
    `simulation: ${devices} devices, all dropped by a ${OUTAGE_S} s outage, broker accepts ${budget} connects/s (and 1/s per client id)`,
  );
  const cur = simulate({ ...o, backoff: base });
  const line = (r: SimResult) =>
    `peak offered ${r.peakOfferedPerSec}/s = ${r.peakOverBudget.toFixed(2)}× the budget, ${r.throttled} throttled of ${r.attempts} attempts, ` +
    `99 % back ${r.t99S === null ? 'not reached' : `${r.t99S.toFixed(0)} s`}, 100 % ${r.t100S === null ? 'not reached' : `${r.t100S.toFixed(0)} s`}, ` +
    `${r.perClientIdViolations} retries < 1 s apart`;
  console.log(
    `default cloud.backoff (base ${base.baseMs / 1000} s, cap ${base.capMs / 1000} s, drop ${base.dropDelayMaxMs / 1000} s, initial ${base.initialDelayMaxMs / 1000} s):\n  ${line(cur)}`,
  );
  const recs = recommend(o, base);
  console.log(`wider first-retry windows (devices / budget = ${Math.ceil(devices / budget)} s):`);
  for (const r of recs)
    console.log(
      `  capMs ${r.backoff.capMs}, dropDelayMaxMs = initialDelayMaxMs ${r.backoff.dropDelayMaxMs}: ${line(r.result)}`,
    );
  const fits = recs.filter((r) => r.result.peakOverBudget <= 1 && r.result.t99S !== null);
  const best = fits.sort((a, b) => a.result.t99S! - b.result.t99S!)[0];
  if (best)
    console.log(
      `\na fleet of ${devices} under ${budget} connects/s needs: "cloud": { "backoff": ${JSON.stringify(best.backoff)} } ` +
        `(peak ${best.result.peakOfferedPerSec}/s, 99 % back in ${best.result.t99S!.toFixed(0)} s)`,
    );
  else console.log('\nno tried setting keeps the peak under the budget: widen the windows further');
  const figs = (r: SimResult): Figures => ({
    peakOfferedPerSec: r.peakOfferedPerSec,
    peakOverBudget: r.peakOverBudget,
    throttled: r.throttled,
    p99BackS: r.t99S,
    p100BackS: r.t100S,
    perClientIdViolations: r.perClientIdViolations,
  });
  writeFigures(values.json, 'storm-simulate', STARTED, {
    devices,
    connectBudget: budget,
    outageS: OUTAGE_S,
    defaults: figs(cur),
    ...(best ? { recommended: { ...figs(best.result), ...best.backoff } } : {}),
  });
}

if (values.simulate !== undefined) await simulation();
else if (values.broker === 'rabbitmq') {
  const figures = await clusterStorm({
    clients: N,
    nodes: Number(values.nodes),
    killNode: values['kill-node'] === true,
    settleS: SETTLE_S,
    log: (l) => console.log(l),
  });
  writeFigures(values.json, 'storm-cluster', STARTED, figures);
  if (STARTED + 600_000 < Date.now()) console.log('over the 10-minute budget');
} else if (values.broker === 'mosquitto') await main();
else throw new Error(`--broker must be mosquitto or rabbitmq, not ${values.broker}`);
