/**
 * The incident replay as a function (bench/incident.ts prints it, test/incident runs it small):
 * a fleet of cameras with real dev-CA identities on a real mosquitto (mTLS, per-serial ACL), the
 * broker stopped for an outage and restarted, and a faulty cloud that, while the fleet comes back,
 * misroutes a share of `stream.start` commands (to another camera's cmd topic) and of viewer
 * connections (a viewer's grant presented to another camera's gate), and sends stale-mapping grants
 * (right camera, viewer no longer bound). Real FLV clients count every byte of every session.
 * Must never leave a process, broker or temp dir behind (everything is closed in finally blocks).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type Config } from '../../agent/config/schema.ts';
import { mintGrant, signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { FlvClient } from '../flv-client.ts';
import { startFleetBackend, type FleetBackend } from '../fleet/backend.ts';
import { startLightCamera, type FleetCamera } from '../fleet/camera.ts';
import { startFullAgent, fullAgentsAvailable } from '../fleet/full-agent.ts';
import { makeKeyPool } from '../pki.ts';
import { holdFor, reached } from '../wait.ts';

export interface IncidentOptions {
  cameras: number;
  /** Full agents (startAgent with the test-pattern pipeline) among them. */
  full: number;
  outageSeconds: number;
  /** Share of viewer connections and of stream.start commands routed to the wrong camera. */
  misroute: number;
  /** Share of sessions sent with a stale-mapping grant (right camera, viewer no longer bound). */
  stale: number;
  /** Cloud link backoff (defaults: the config schema's, as shipped). */
  backoff?: { baseMs?: number; capMs?: number; initialDelayMaxMs?: number; resetAfterMs?: number };
  /** How long a correctly routed viewer of a full agent plays (ms). */
  playMs?: number;
  /** Give up waiting for the fleet / the events after this long (ms). */
  patienceMs?: number;
  /** Key pairs shared by the fleet's certificates (RSA keygen is slow here). */
  keyPool?: number;
  log?: (line: string) => void;
}

type Route = 'correct' | 'misrouted' | 'stale';

interface SessionRecord {
  kind: 'viewer' | 'command';
  route: Route;
  intended: string;
  dest: string;
  destKind: 'full' | 'light';
  jti: string;
  sentAt: number;
  /** viewer: HTTP status; command: 'ok' | error code | 'undelivered'. */
  outcome: string;
  mediaTags: number;
  flvBytes: number;
  refused: boolean;
  /** Whether the cloud saw the destination online when the misroute was sent. */
  destOnline: boolean;
  eventAt?: number;
}

export interface IncidentResult {
  cameras: number;
  full: number;
  light: number;
  fullMode: string;
  outageSeconds: number;
  setupSeconds: number;
  reconnect: {
    back: number;
    peakPerSec: number;
    t50: number | null;
    t99: number | null;
    t100: number | null;
    curve: number[];
  };
  sessions: {
    attempted: number;
    viewer: number;
    command: number;
    misrouted: number;
    stale: number;
    correct: number;
    undelivered: number;
  };
  correctViewersWithFrames: number;
  correctFullViewers: number;
  framesToCorrectViewers: number;
  framesToWrongViewer: number;
  bytesToWrongViewer: number;
  misroutesAccepted: number;
  misroutesRefused: number;
  staleRefused: number;
  eventsReceived: number;
  eventsByType: Record<string, number>;
  expectedEvents: number;
  eventsLost: number;
  emittedByLight: number;
  receivedFromLight: number;
  latencyMs: { median: number | null; max: number | null };
  /** The same, only for misroutes whose destination was online (no queueing across a reconnect). */
  latencyOnlineMs: { median: number | null; max: number | null; n: number };
  /** Misroutes refused while the destination's cloud link was still down (events queued on disk). */
  refusedWhileOffline: number;
  ok: boolean;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Exact shares: `misroute` and `stale` of n, the rest correct, in random order. */
function routes(n: number, misroute: number, stale: number): Route[] {
  const m = Math.round(n * misroute);
  const s = Math.min(n - m, Math.round(n * stale));
  return shuffle([
    ...Array<Route>(m).fill('misrouted'),
    ...Array<Route>(s).fill('stale'),
    ...Array<Route>(n - m - s).fill('correct'),
  ]);
}

export async function runIncident(opts: IncidentOptions): Promise<IncidentResult> {
  const log = opts.log ?? (() => undefined);
  const N = opts.cameras;
  const patience = opts.patienceMs ?? 180_000;
  const playMs = opts.playMs ?? 1500;
  const work = mkdtempSync(join(tmpdir(), 'lenscap-incident-'));
  const cameras: FleetCamera[] = [];
  let backend: FleetBackend | undefined;
  const clients = new Set<FlvClient>();
  try {
    const t00 = Date.now();
    backend = await startFleetBackend(work);
    const { deviceCa, serverCa, keys, broker, cloud } = backend;

    const config: Config = configSchema.parse({
      cloud: { url: broker.url, protocolVersion: 5, servername: 'localhost', backoff: opts.backoff ?? {} },
    });
    const fullN = Math.min(opts.full, N);
    const serials = Array.from({ length: N }, (_, i) => `CAM-${String(i + 1).padStart(5, '0')}`);
    const pool = await makeKeyPool(deviceCa, Math.min(N, opts.keyPool ?? 16));
    log(
      `incident: issuing ${N} device certificates from the dev CA (CSR per serial, ${pool.size} pooled key pairs) and starting the fleet`,
    );
    for (let i = 0; i < N; i++) {
      const serial = serials[i]!;
      const identity = { ...pool.issue(serial), brokerCa: serverCa.certPem };
      const trust = {
        trustRootJwk: keys.trustRootJwk,
        trustBundle: keys.trustBundle,
        binding: signBindingRecord(keys.binding, {
          serial,
          owner: `owner-${i + 1}`,
          viewers: [`viewer-${i + 1}`],
          version: 1,
        }),
      };
      const root = join(work, 'cams', serial);
      if (i < fullN)
        cameras.push(
          await startFullAgent({ serial, root, config, identity, trust, deviceCaPem: deviceCa.certPem }),
        );
      else cameras.push(await startLightCamera({ serial, root, config, identity, trust }));
    }
    const fullMode = fullN === 0 ? 'none' : fullAgentsAvailable();
    const byserial = new Map(cameras.map((c) => [c.serial, c]));
    if (!(await reached(() => cameras.every((c) => cloud!.online(c.serial)), patience, { stepMs: 200 }))) {
      throw new Error(`fleet not up: ${cameras.filter((c) => cloud!.online(c.serial)).length}/${N} online`);
    }
    const setupSeconds = (Date.now() - t00) / 1000;
    log(
      `incident: ${N} cameras online (${fullN} full agents, ${N - fullN} light) after ${setupSeconds.toFixed(1)} s; broker down for ${opts.outageSeconds} s`,
    );

    // The outage.
    await broker.stop('SIGTERM');
    cloud.resetOnline();
    await holdFor(opts.outageSeconds * 1000, 'the broker outage the incident replays');
    await broker.restart();
    const t0 = Date.now();
    // Back = the cloud saw the camera's live online state (what a cloud can know), per camera once.
    const backAt = new Map<string, number>();
    const offOnline = cloud.onOnline((serial, at) => {
      if (!backAt.has(serial)) backAt.set(serial, at - t0);
    });
    log(
      `incident: broker back after ${((t0 - t00) / 1000).toFixed(1)} s in all; the faulty cloud routes sessions as cameras return`,
    );

    // The faulty router: one viewer session and one stream.start per camera, routed when the cloud
    // sees that camera back (it only routes to cameras it believes online).
    const viewerRoutes = routes(N, opts.misroute, opts.stale);
    const commandRoutes = routes(N, opts.misroute, opts.stale);
    const other = (i: number) => {
      const j = (i + 1 + Math.floor(Math.random() * (N - 1))) % N;
      return j === i ? (i + 1) % N : j;
    };
    const records: SessionRecord[] = [];

    const viewerSession = async (i: number, route: Route) => {
      const intended = serials[i]!;
      const destSerial = route === 'misrouted' ? serials[other(i)]! : intended;
      const dest = byserial.get(destSerial)!;
      const viewer = route === 'stale' ? `former-${i + 1}` : `viewer-${i + 1}`;
      const g = mintGrant(keys.issuer, { serial: intended, viewer, ttlSeconds: 300 });
      const rec: SessionRecord = {
        kind: 'viewer',
        route,
        intended,
        dest: destSerial,
        destKind: dest.kind,
        jti: g.jti,
        sentAt: Date.now(),
        outcome: '',
        mediaTags: 0,
        flvBytes: 0,
        refused: false,
        destOnline: cloud!.online(destSerial),
      };
      records.push(rec);
      const c = FlvClient.http({
        url: `${dest.gateUrl}/live/${destSerial}.flv`,
        headers: { authorization: `Bearer ${g.token}` },
        rejectUnauthorized: false,
      });
      clients.add(c);
      try {
        if (route === 'correct' && dest.kind === 'full') {
          await c.waitForKeyframe(10_000).catch(() => undefined);
          await holdFor(playMs, 'the bound viewer plays real media for playMs');
        } else {
          // A refusal closes at once; an accepted session on a capture-disabled camera stays open, empty.
          await c
            .waitFor((r) => r.closed || (r.status === 200 && route === 'correct'), 5000)
            .catch(() => undefined);
          if (route !== 'correct') await c.waitClosed(2000).catch(() => undefined);
        }
      } finally {
        c.close();
        clients.delete(c);
      }
      rec.outcome = String(c.result.status);
      rec.mediaTags = c.result.parser.tags.filter((t) => t.type === 'video' || t.type === 'audio').length;
      rec.flvBytes = c.result.flvBodyBytes;
      rec.refused = (c.result.status === 401 || c.result.status === 403) && rec.flvBytes === 0;
    };

    const commandSession = async (i: number, route: Route) => {
      const intended = serials[i]!;
      const destSerial = route === 'misrouted' ? serials[other(i)]! : intended;
      const dest = byserial.get(destSerial)!;
      // Push goes to the light cameras (capture disabled); a full agent would need a relay. A
      // misroute may still land on a full agent.
      const viewer = route === 'stale' ? `former-${i + 1}` : `viewer-${i + 1}`;
      const g = mintGrant(keys.issuer, {
        serial: intended,
        viewer,
        ttlSeconds: 300,
        relay: `rtmp://127.0.0.1:1/live/${intended}`,
      });
      if (!(await cloud!.waitOnline(destSerial, patience))) {
        records.push({
          kind: 'command',
          route,
          intended,
          dest: destSerial,
          destKind: dest.kind,
          jti: g.jti,
          sentAt: Date.now(),
          outcome: 'undelivered',
          mediaTags: 0,
          flvBytes: 0,
          refused: false,
          destOnline: false,
        });
        return;
      }
      const rec: SessionRecord = {
        kind: 'command',
        route,
        intended,
        dest: destSerial,
        destKind: dest.kind,
        jti: g.jti,
        sentAt: Date.now(),
        outcome: '',
        mediaTags: 0,
        flvBytes: 0,
        refused: false,
        destOnline: true,
      };
      records.push(rec);
      const reply = await cloud!.command(destSerial, 'stream.start', { grant: g.token }, 15_000);
      if (!reply) {
        rec.outcome = 'undelivered';
        return;
      }
      rec.outcome = reply.status === 'ok' ? 'ok' : (reply.error?.code ?? 'error');
      rec.refused = reply.status === 'error' && /^ERR_GRANT_/.test(reply.error?.code ?? '');
      if (reply.status === 'ok') await cloud!.command(destSerial, 'stream.stop', { jti: g.jti }, 15_000);
    };

    const routed = serials.map(async (serial, i) => {
      // Full agents get no correct push (no relay in this bench); misroutes may still land on them.
      const cmdRoute = commandRoutes[i]!;
      if (!(await cloud!.waitOnline(serial, patience))) return;
      const work: Array<Promise<void>> = [viewerSession(i, viewerRoutes[i]!)];
      if (byserial.get(serial)!.kind === 'light' || cmdRoute !== 'correct')
        work.push(commandSession(i, cmdRoute));
      await Promise.all(work);
    });
    await Promise.all(routed);
    log(
      `incident: ${records.length} sessions routed ${((Date.now() - t0) / 1000).toFixed(1)} s after the restart; waiting for the events`,
    );
    await reached(() => backAt.size === N, patience, { stepMs: 200 });
    offOnline();

    // Every refusal must reach the cloud: wait for each expected event (by the grant's jti).
    const expected = records.filter((r) => r.route !== 'correct' && r.outcome !== 'undelivered');
    const match = (r: SessionRecord) =>
      cloud!.events.find((e) => e.serial === r.dest && e.event.jti === r.jti);
    await reached(() => expected.every((r) => match(r)), 60_000, { stepMs: 200 });
    await reached(() => cameras.every((c) => c.queued() <= 0), 10_000, { stepMs: 200 });
    for (const r of expected) r.eventAt = match(r)?.at;

    // The reconnect curve, per second after the restart.
    const times = [...backAt.values()].sort((a, b) => a - b);
    const curve: number[] = [];
    for (const t of times) curve[Math.floor(t / 1000)] = (curve[Math.floor(t / 1000)] ?? 0) + 1;
    for (let k = 0; k < curve.length; k++) curve[k] ??= 0;
    const at = (q: number) => (times.length >= Math.ceil(q * N) ? times[Math.ceil(q * N) - 1]! / 1000 : null);

    const wrong = records.filter((r) => r.route !== 'correct');
    const lat = (rs: SessionRecord[]) =>
      rs
        .filter((r) => r.eventAt !== undefined)
        .map((r) => r.eventAt! - r.sentAt)
        .sort((a, b) => a - b);
    const latencies = lat(expected);
    const onlineLat = lat(expected.filter((r) => r.destOnline));
    const byType: Record<string, number> = {};
    for (const e of cloud.events)
      byType[`${e.event.type}:${e.event.reason ?? ''}`] =
        (byType[`${e.event.type}:${e.event.reason ?? ''}`] ?? 0) + 1;
    const light = cameras.filter((c) => c.kind === 'light');
    const lightSet = new Set(light.map((c) => c.serial));
    const correctFull = records.filter(
      (r) => r.kind === 'viewer' && r.route === 'correct' && r.destKind === 'full',
    );
    const res: IncidentResult = {
      cameras: N,
      full: fullN,
      light: N - fullN,
      fullMode,
      outageSeconds: opts.outageSeconds,
      setupSeconds,
      reconnect: {
        back: times.length,
        peakPerSec: Math.max(0, ...curve),
        t50: at(0.5),
        t99: at(0.99),
        t100: at(1),
        curve,
      },
      sessions: {
        attempted: records.length,
        viewer: records.filter((r) => r.kind === 'viewer').length,
        command: records.filter((r) => r.kind === 'command').length,
        misrouted: records.filter((r) => r.route === 'misrouted').length,
        stale: records.filter((r) => r.route === 'stale').length,
        correct: records.filter((r) => r.route === 'correct').length,
        undelivered: records.filter((r) => r.outcome === 'undelivered').length,
      },
      correctFullViewers: correctFull.length,
      correctViewersWithFrames: correctFull.filter((r) => r.mediaTags > 0).length,
      framesToCorrectViewers: records
        .filter((r) => r.route === 'correct')
        .reduce((n, r) => n + r.mediaTags, 0),
      framesToWrongViewer: wrong.reduce((n, r) => n + r.mediaTags, 0),
      bytesToWrongViewer: wrong.reduce((n, r) => n + r.flvBytes, 0),
      misroutesAccepted: wrong.filter((r) => (r.kind === 'viewer' ? r.outcome === '200' : r.outcome === 'ok'))
        .length,
      misroutesRefused: records.filter((r) => r.route === 'misrouted' && r.refused).length,
      staleRefused: records.filter((r) => r.route === 'stale' && r.refused).length,
      eventsReceived: cloud.events.length,
      eventsByType: byType,
      expectedEvents: expected.length,
      eventsLost: expected.filter((r) => r.eventAt === undefined).length,
      emittedByLight: light.reduce((n, c) => n + c.emitted(), 0),
      receivedFromLight: cloud.events.filter((e) => lightSet.has(e.serial)).length,
      latencyMs: {
        median: latencies.length ? latencies[Math.floor(latencies.length / 2)]! : null,
        max: latencies.length ? latencies[latencies.length - 1]! : null,
      },
      latencyOnlineMs: {
        median: onlineLat.length ? onlineLat[Math.floor(onlineLat.length / 2)]! : null,
        max: onlineLat.length ? onlineLat[onlineLat.length - 1]! : null,
        n: onlineLat.length,
      },
      refusedWhileOffline: expected.filter((r) => !r.destOnline).length,
      ok: false,
    };
    // Lost = an expected event that never came, or a light camera's event that left no trace.
    res.eventsLost += Math.max(0, res.emittedByLight - res.receivedFromLight);
    res.ok =
      res.framesToWrongViewer === 0 &&
      res.bytesToWrongViewer === 0 &&
      res.misroutesAccepted === 0 &&
      res.eventsLost === 0;
    return res;
  } finally {
    for (const c of clients) c.close();
    await Promise.all(cameras.map((c) => c.stop().catch(() => undefined)));
    await backend?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

export function formatIncident(r: IncidentResult): string {
  const s = (v: number | null) => (v === null ? 'not reached' : `${v.toFixed(1)} s`);
  const ms = (v: number | null) => (v === null ? 'n/a' : `${v} ms`);
  const buckets: number[] = [];
  r.reconnect.curve.forEach((v, i) => (buckets[Math.floor(i / 5)] = (buckets[Math.floor(i / 5)] ?? 0) + v));
  const rows: Array<[string, string]> = [
    [
      'identities',
      'dev CA (scripts/dev-cloud/ca.ts signDeviceCsr): one certificate per serial (CN = serial), key pairs from a small pool (RSA keygen costs 0.1–0.4 s here)',
    ],
    [
      'cameras',
      `${r.cameras} (${r.full} full agents: ${r.fullMode}; ${r.light} light: real event queue + grant gate + viewer gate + cloud link, capture pipeline disabled)`,
    ],
    ['outage', `${r.outageSeconds} s (mosquitto stopped, restarted on the same port)`],
    [
      'reconnect: back / peak connects/s',
      `${r.reconnect.back}/${r.cameras}, peak ${r.reconnect.peakPerSec}/s (${((r.reconnect.peakPerSec / r.cameras) * 100).toFixed(1)} % of the fleet)`,
    ],
    [
      'reconnect: time to 50 % / 99 % / 100 %',
      `${s(r.reconnect.t50)} / ${s(r.reconnect.t99)} / ${s(r.reconnect.t100)}`,
    ],
    ['reconnect: connects per 5 s', buckets.map((v, i) => `${i * 5}-${i * 5 + 5}s:${v ?? 0}`).join(' ')],
    [
      'sessions attempted',
      `${r.sessions.attempted} (${r.sessions.viewer} viewer connections, ${r.sessions.command} stream.start commands)`,
    ],
    ['misrouted', `${r.sessions.misrouted} (wrong camera's gate or cmd topic)`],
    ['stale-mapping grants', `${r.sessions.stale} (right camera, viewer no longer bound)`],
    ['not delivered (destination never back)', String(r.sessions.undelivered)],
    [
      'correct viewers of full agents with frames',
      `${r.correctViewersWithFrames}/${r.correctFullViewers} (${r.framesToCorrectViewers} media tags)`,
    ],
    [
      'FRAMES DELIVERED TO A WRONG VIEWER',
      `${r.framesToWrongViewer} (${r.bytesToWrongViewer} FLV body bytes; must be 0)`,
    ],
    ['misroutes accepted', `${r.misroutesAccepted} (must be 0)`],
    ['misroutes refused', `${r.misroutesRefused}/${r.sessions.misrouted}`],
    ['stale grants refused', `${r.staleRefused}/${r.sessions.stale}`],
    [
      'security events received by the cloud',
      `${r.eventsReceived} (${Object.entries(r.eventsByType)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    ],
    [
      'time from misroute to event: median / max',
      `${ms(r.latencyMs.median)} / ${ms(r.latencyMs.max)} (all ${r.expectedEvents}; ${r.refusedWhileOffline} refused while the camera's link was still down, delivered from its disk queue on reconnect)`,
    ],
    [
      '  … destination online at the time',
      `${ms(r.latencyOnlineMs.median)} / ${ms(r.latencyOnlineMs.max)} (n = ${r.latencyOnlineMs.n})`,
    ],
    [
      'EVENTS LOST',
      `${r.eventsLost} (expected ${r.expectedEvents} by jti; light cameras emitted ${r.emittedByLight}, cloud got ${r.receivedFromLight}; must be 0)`,
    ],
    ['verdict', r.ok ? 'PASS: no frame to a wrong viewer, no event lost' : 'FAIL'],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
