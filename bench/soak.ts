/**
 * Soak: one whole agent (its own process, startAgent) on the real stack — mosquitto over mTLS, the
 * test pattern through ffmpeg, the HTTPS gate — for `--minutes N`, while:
 * - viewer sessions with short grants play one after another and must be cut at `exp`;
 * - the broker is killed (SIGKILL) every `--kill-every` s and comes back a few seconds later, and
 *   while it is down the camera is shown validly signed grants for another serial (wrong_audience:
 *   security events it must queue on disk and deliver after the reconnect);
 * - the capture ffmpeg is killed (SIGKILL) every `--kill-every` s, half a period after the broker;
 * - a steady trickle of hostile requests (garbage tokens) and malformed commands.
 * Measured: RSS and open fds of the agent (drift = median of the last fifth minus median of the
 * first fifth after warm-up), security events lost (by jti), sessions played, the worst cut after
 * exp, agent restarts. Goals (issue 12): RSS drift ≤ 5 MB, fd drift ≤ 2, 0 events lost with events
 * queued while down, every cut ≤ 1 s after exp, 0 restarts. Exits 1 when a goal is missed.
 * Usage: npx tsx bench/soak.ts [--minutes 5] [--kill-every 30] [--warmup 20] [--json FILE]
 * Must never leave a broker, agent or ffmpeg behind (everything is stopped in finally blocks).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { configSchema } from '../agent/config/schema.ts';
import { loadOrCreateDevCas } from '../scripts/dev-cloud/ca.ts';
import { mintGrant, signBindingRecord } from '../scripts/dev-cloud/mint.ts';
import { loadOrCreateSigningKeys } from '../scripts/dev-cloud/signing-keys.ts';
import { FlvClient } from '../harness/flv-client.ts';
import { startAclBroker, type AclBroker } from '../harness/acl-broker.ts';
import { writeCameraState } from '../harness/fleet/camera.ts';
import { connectBenchCloud, type BenchCloud } from '../harness/fleet/cloud.ts';
import { fullAgentConfig, runAgentChild, stopAgentChild } from '../harness/fleet/full-agent.ts';
import { makeKeyPool } from '../harness/fleet/identities.ts';
import { writeFigures } from './_json.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    'kill-every': { type: 'string', default: '30' },
    warmup: { type: 'string', default: '20' },
    json: { type: 'string' },
  },
});
const STARTED = Date.now();
const DURATION_MS = Number(values.minutes) * 60_000;
const KILL_EVERY_MS = Number(values['kill-every']) * 1000;
const WARMUP_MS = Number(values.warmup) * 1000;
const BROKER_DOWN_MS = 4000;
const GRANT_TTL_S = 6;
const SERIAL = 'CAM-SOAK';
const VIEWER = 'viewer';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const med = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
/** The agent's capture ffmpeg: its child process whose command is ffmpeg. */
function captureFfmpegPid(agentPid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${agentPid}/task/${agentPid}/children`, 'utf8').trim().split(/\s+/);
    for (const k of kids.filter(Boolean)) {
      const comm = readFileSync(`/proc/${k}/comm`, 'utf8').trim();
      if (comm.startsWith('ffmpeg')) return Number(k);
    }
  } catch {
    /* the agent or the child just went away */
  }
  return undefined;
}

/** A hostile request: a garbage bearer token (no valid signature: counted, never admitted). */
function hostileRequest(gateUrl: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      `${gateUrl}/live/${SERIAL}.flv`,
      {
        rejectUnauthorized: false,
        headers: { authorization: `Bearer x${Math.random().toString(36).slice(2)}.y.z` },
        timeout: 3000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

const work = mkdtempSync(join(tmpdir(), 'lenscap-soak-'));
let broker: AclBroker | undefined;
let cloud: BenchCloud | undefined;
let agent: ChildProcess | undefined;
let failed: boolean | undefined;
try {
  const devDir = join(work, 'dev');
  const { deviceCa, serverCa } = loadOrCreateDevCas(devDir);
  const keys = await loadOrCreateSigningKeys(devDir);
  broker = await startAclBroker({
    dir: join(work, 'broker'),
    ca: deviceCa.certPem,
    ...serverCa.issueServer('localhost'),
  });
  cloud = await connectBenchCloud({
    url: broker.url,
    ca: serverCa.certPem,
    ...deviceCa.issueClient('lenscap-cloud'),
  });
  const root = join(work, 'cam');
  const pool = await makeKeyPool(deviceCa, 1);
  writeCameraState(
    root,
    { ...pool.issue(SERIAL), brokerCa: serverCa.certPem, deviceCa: deviceCa.certPem },
    {
      trustRootJwk: keys.trustRootJwk,
      trustBundle: keys.trustBundle,
      binding: signBindingRecord(keys.binding, {
        serial: SERIAL,
        owner: 'owner',
        viewers: [VIEWER],
        version: 1,
      }),
    },
  );
  const base = configSchema.parse({
    cloud: {
      url: broker.url,
      protocolVersion: 5,
      servername: 'localhost',
      backoff: { initialDelayMaxMs: 0, capMs: 5000 },
    },
  });
  const cfg = fullAgentConfig(base, SERIAL, root);
  // On demand, as shipped: capture runs while someone watches; the idle grace keeps it across sessions.
  cfg.camera = { driver: 'testpattern', width: 160, height: 90, fps: 10, gopSeconds: 1, bitrateKbps: 100 };
  // The hostile trickle and the test's own wrong-audience grants share 127.0.0.1: the per-address
  // refusal limit (answered 429 before any decision) would otherwise hide the signed refusals.
  cfg.gate = { ...(cfg.gate as object), refusalRateLimit: { perMinute: 10_000 } };
  const file = join(root, 'bench-config.json');
  writeFileSync(file, JSON.stringify(cfg));
  let restarts = 0;
  const started = await runAgentChild(file);
  agent = started.child;
  agent.once('exit', () => restarts++);
  const gateUrl = started.gateUrl.replace('0.0.0.0', '127.0.0.1');
  if (!(await cloud.waitOnline(SERIAL, 30_000))) throw new Error('agent did not come online within 30 s');
  const pid = agent.pid!;
  process.stderr.write(
    `soak: agent online (pid ${pid}), ${values.minutes} min, kills every ${KILL_EVERY_MS / 1000} s\n`,
  );

  const expectedJtis = new Set<string>();
  let eventsQueuedWhileDown = 0;
  let brokerKills = 0;
  let ffmpegKills = 0;
  let sessions = 0;
  let sessionsRefused = 0;
  const cutLateMs: number[] = [];
  const samples: { at: number; rss: number; fds: number }[] = [];
  let hostile = 0;
  let hostileAdmitted = 0;
  const t0 = Date.now();
  const end = t0 + DURATION_MS;
  let stop = false;

  // Viewer sessions, one after another: each must play and be cut at exp.
  const viewers = (async () => {
    while (!stop && Date.now() < end - (GRANT_TTL_S + 3) * 1000) {
      const g = mintGrant(keys.issuer, { serial: SERIAL, viewer: VIEWER, ttlSeconds: GRANT_TTL_S });
      const c = FlvClient.http({
        url: `${gateUrl}/live/${SERIAL}.flv`,
        // The gate's certificate names the serial, not 127.0.0.1; TLS trust is tested elsewhere.
        rejectUnauthorized: false,
        headers: { authorization: `Bearer ${g.token}` },
      });
      const r = await c.waitClosed((GRANT_TTL_S + 10) * 1000).catch(() => undefined);
      const closedAtEpoch = Date.now();
      c.close();
      if (r && r.status === 200 && r.parser.sawKeyframe) {
        sessions++;
        cutLateMs.push(closedAtEpoch - g.exp * 1000);
      } else sessionsRefused++;
      await sleep(200);
    }
  })();
  // Hostile trickle: a garbage request and a malformed command every second.
  const trickle = (async () => {
    while (!stop && Date.now() < end) {
      hostile++;
      if ((await hostileRequest(gateUrl)) === 200) hostileAdmitted++;
      if (broker.running())
        void cloud.command(SERIAL, 'stream.start', { id: `bad-${hostile}`, grant: 'not a grant' }, 2000);
      await sleep(1000);
    }
  })();
  // Sampling.
  const sampler = (async () => {
    while (!stop && Date.now() < end) {
      samples.push({ at: Date.now() - t0, rss: rssMb(pid), fds: fdCount(pid) });
      await sleep(2000);
    }
  })();
  // Faults: the broker at 0, 1, 2… periods; ffmpeg half a period later.
  let next = t0 + KILL_EVERY_MS;
  while (Date.now() < end - KILL_EVERY_MS / 2) {
    await sleep(Math.max(0, next - Date.now()));
    if (Date.now() >= end - BROKER_DOWN_MS - 2000) break;
    await broker.stop('SIGKILL');
    brokerKills++;
    cloud.resetOnline();
    // Security events raised while the broker is down: validly signed grants for another serial.
    for (let i = 0; i < 3; i++) {
      const g = mintGrant(keys.issuer, { serial: 'CAM-SOMEONE-ELSE', viewer: VIEWER, ttlSeconds: 60 });
      const c = FlvClient.http({
        url: `${gateUrl}/live/${SERIAL}.flv`,
        // The gate's certificate names the serial, not 127.0.0.1; TLS trust is tested elsewhere.
        rejectUnauthorized: false,
        headers: { authorization: `Bearer ${g.token}` },
      });
      const r = await c.waitClosed(5000).catch(() => undefined);
      c.close();
      if (r && r.flvBodyBytes > 0) throw new Error('a grant for another serial received media');
      expectedJtis.add(g.jti);
      eventsQueuedWhileDown++;
    }
    await sleep(BROKER_DOWN_MS);
    await broker.restart();
    await sleep(KILL_EVERY_MS / 2);
    const ff = captureFfmpegPid(pid);
    if (ff) {
      process.kill(ff, 'SIGKILL');
      ffmpegKills++;
    }
    next += KILL_EVERY_MS;
  }
  stop = true;
  await Promise.all([viewers, trickle, sampler]);
  // Let the queue drain: every expected event must arrive.
  const drainEnd = Date.now() + 60_000;
  const received = () => new Set(cloud!.events.map((e) => e.event.jti).filter(Boolean));
  while (Date.now() < drainEnd && [...expectedJtis].some((j) => !received().has(j))) await sleep(500);
  const got = received();
  const eventsLost = [...expectedJtis].filter((j) => !got.has(j)).length;

  const after = samples.filter((s) => s.at >= WARMUP_MS);
  const fifth = Math.max(1, Math.floor(after.length / 5));
  const first = after.slice(0, fifth);
  const last = after.slice(-fifth);
  const rssDriftMb = med(last.map((s) => s.rss)) - med(first.map((s) => s.rss));
  const fdDrift = med(last.map((s) => s.fds)) - med(first.map((s) => s.fds));
  const sessionsCutLateMaxMs = cutLateMs.length ? Math.max(...cutLateMs) : NaN;
  const goals = {
    rss: rssDriftMb <= 5,
    fd: fdDrift <= 2,
    events: eventsLost === 0 && eventsQueuedWhileDown > 0,
    cut: sessions > 0 && sessionsCutLateMaxMs <= 1000,
    restarts: restarts === 0,
    hostile: hostileAdmitted === 0,
  };
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  console.log(
    `soak: ${values.minutes} min, one agent (startAgent), mosquitto over mTLS, testpattern 160x90@10 via ffmpeg, broker and ffmpeg killed every ${KILL_EVERY_MS / 1000} s (offset by half a period)`,
  );
  console.log(
    `RSS ${med(first.map((s) => s.rss)).toFixed(1)} → ${med(last.map((s) => s.rss)).toFixed(1)} MB (drift ${rssDriftMb.toFixed(1)} MB, goal ≤ 5: ${met(goals.rss)}); fds ${med(first.map((s) => s.fds))} → ${med(last.map((s) => s.fds))} (drift ${fdDrift}, goal ≤ 2: ${met(goals.fd)})`,
  );
  console.log(
    `security events raised while the broker was down ${eventsQueuedWhileDown}, lost ${eventsLost} (goal 0: ${met(goals.events)}); cloud received ${cloud.events.length} events in all`,
  );
  console.log(
    `viewer sessions played ${sessions} (${sessionsRefused} did not play: broker/ffmpeg faults), worst cut after exp ${sessionsCutLateMaxMs.toFixed(0)} ms, median ${med(cutLateMs).toFixed(0)} ms (goal ≤ 1000: ${met(goals.cut)})`,
  );
  console.log(
    `broker kills ${brokerKills}, ffmpeg kills ${ffmpegKills}, agent restarts ${restarts} (goal 0: ${met(goals.restarts)}); hostile requests ${hostile}, admitted ${hostileAdmitted}`,
  );
  failed = !Object.values(goals).every(Boolean);
  console.log(`verdict: ${failed ? 'goal MISSED' : 'all goals met'}`);
  writeFigures(values.json, 'soak', STARTED, {
    minutes: Number(values.minutes),
    rssDriftMb,
    fdDrift,
    eventsQueuedWhileDown,
    eventsLost,
    sessions,
    sessionsCutLateMaxMs,
    agentRestarts: restarts,
    brokerKills,
    ffmpegKills,
    hostileRequests: hostile,
    hostileAdmitted,
  });
} finally {
  if (agent) {
    const ff = agent.pid ? captureFfmpegPid(agent.pid) : undefined;
    agent.removeAllListeners('exit');
    await stopAgentChild(agent);
    if (ff) {
      try {
        process.kill(ff, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  await cloud?.close().catch(() => undefined);
  await broker?.stop('SIGKILL').catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = failed === false ? 0 : 1;
