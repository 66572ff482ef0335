/**
 * The events phase of the incident replay (issue 16): a fleet of event cameras keeps recording
 * through a broker outage, and after it a mixed-up thumbnail cache serves a share of one user's
 * event thumbnails to another.
 * Real parts: aedes over mutual TLS (restarted on the same port after the outage), each camera's own
 * cloud link and upload queue (agent/uploads/, the composition root's service), the dev cloud
 * answering `req/upload.url` with URLs signed by @aws-sdk/s3-request-presigner, s3rver over HTTPS
 * with SigV4 checked, and the sealed artifact format (agent/sealing/artifact.ts, HPKE to the owner's
 * viewer key). The recorded media is ffmpeg's test pattern with a moving block (one JPEG and one
 * MP4 rendered at start, sealed afresh per event); the motion detector itself is benched by
 * bench/motion.ts. Must never leave a broker, store or link running.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventQueue } from '../../agent/audit/event-queue.ts';
import { systemClock } from '../../agent/clock.ts';
import { CommandRegistry } from '../../agent/cloud/commands.ts';
import type { CloudLink } from '../../agent/cloud/link.ts';
import { configSchema } from '../../agent/config/schema.ts';
import type { SealedArtifact } from '../../agent/events/artifact.ts';
import { silentLogger } from '../../agent/log.ts';
import { openArtifact, sealArtifact } from '../../agent/sealing/artifact.ts';
import { suiteFor } from '../../agent/sealing/suite.ts';
import { writeFileAtomic } from '../../agent/storage/atomic-file.ts';
import { resolveFfmpegPath } from '../../agent/stream/ffmpeg-path.ts';
import { createUploadService, type UploadService } from '../../agent/uploads/service.ts';
import { startAedesBroker, type RunningBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { connectCloudClient } from '../../scripts/dev-cloud/cloud-client.ts';
import { createEventCache } from '../../scripts/dev-cloud/event-cache.ts';
import { startObjectStore } from '../../scripts/dev-cloud/object-store.ts';
import { startDevUploads } from '../../scripts/dev-cloud/uploads.ts';
import { holdFor, reached } from '../wait.ts';
import { openLinkCamera } from '../fleet/camera.ts';

export interface EventsIncidentOptions {
  cameras: number;
  outageSeconds: number;
  /** Share of thumbnail answers the cache mixes up (at least one is). */
  share: number;
  /** Motion events each camera records during the outage. */
  eventsDuringOutage?: number;
  patienceMs?: number;
  log?: (line: string) => void;
}

export interface EventsIncidentResult {
  cameras: number;
  outageSeconds: number;
  snapshotsRecorded: number;
  clipsRecorded: number;
  clipsRecordedDuringOutage: number;
  /** Recorded clips whose object and metadata never arrived (goal 0). */
  clipsLost: number;
  snapshotsLost: number;
  /** Counted drops by the queues' bounds (documented loss; goal 0 here). */
  artifactsDropped: number;
  snapshotsServedToWrongUser: number;
  snapshotsDecodedByWrongUser: number;
  snapshotsDecodedByOwner: number;
  /** From the broker's return until every outage artifact was stored and announced. */
  drainSeconds: number;
  /** Event (enqueue) → metadata received, for events recorded while online, median ms. */
  uploadLatencyMedianMs: number;
  ok: boolean;
}

interface Viewer {
  user: string;
  kid: string;
  keyPair: CryptoKeyPair;
  publicKey: JsonWebKey;
}

interface Camera {
  serial: string;
  owner: Viewer;
  link: CloudLink;
  queue: EventQueue;
  uploads: UploadService;
  spool: string;
}

/** One JPEG and one short MP4 of the test pattern with a moving block. */
function renderMedia(dir: string): { jpeg: Buffer; mp4: Buffer } {
  const ffmpeg = resolveFfmpegPath().path;
  const src = 'testsrc2=size=160x90:rate=10,drawbox=x=t*40:y=20:w=40:h=40:color=white:t=fill';
  const jpg = join(dir, 'snap.jpg');
  const mp4 = join(dir, 'clip.mp4');
  execFileSync(ffmpeg, ['-v', 'error', '-f', 'lavfi', '-i', src, '-frames:v', '1', '-y', jpg]);
  execFileSync(ffmpeg, [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    src,
    '-t',
    '2',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-pix_fmt',
    'yuv420p',
    '-movflags',
    'frag_keyframe+empty_moov',
    '-y',
    mp4,
  ]);
  return { jpeg: readFileSync(jpg), mp4: readFileSync(mp4) };
}

async function makeViewer(user: string): Promise<Viewer> {
  const keyPair = await (await suiteFor('X25519')).kem.generateKeyPair();
  const publicKey = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  return { user, kid: `${user}-phone`, keyPair, publicKey };
}

export async function runEventsIncident(opts: EventsIncidentOptions): Promise<EventsIncidentResult> {
  const log = opts.log ?? (() => undefined);
  const patience = opts.patienceMs ?? 300_000;
  const perOutage = opts.eventsDuringOutage ?? 2;
  const root = mkdtempSync(join(tmpdir(), 'lenscap-incident-events-'));
  const closers: Array<() => Promise<unknown> | unknown> = [];
  try {
    const media = renderMedia(root);
    const deviceCa = DevCa.create('incident device CA');
    const serverCa = DevCa.create('incident server CA');
    const server = serverCa.issueServer('localhost');
    const cloudId = deviceCa.issueClient('lenscap-cloud');
    const brokerTls = { key: server.key, cert: server.cert, ca: deviceCa.certPem };
    let broker: RunningBroker = await startAedesBroker({ tls: brokerTls });
    closers.push(() => broker.close());
    const store = await startObjectStore({
      dir: join(root, 'objects'),
      tls: server,
      caPem: serverCa.certPem,
    });
    closers.push(() => store.close());
    const storeCa = join(root, 'store-ca.pem');
    writeFileSync(storeCa, serverCa.certPem);
    const cloud = await connectCloudClient({
      url: broker.url,
      key: cloudId.key,
      cert: cloudId.cert,
      ca: serverCa.certPem,
      protocolVersion: 4,
    });
    closers.push(() => cloud.close());
    const dev = startDevUploads({ cloud, store });
    closers.push(() => dev.close());

    const alice = await makeViewer('alice');
    const bob = await makeViewer('bob');
    const config = configSchema.parse({
      cloud: {
        url: broker.url,
        protocolVersion: 4,
        connectTimeoutMs: 3000,
        backoff: { baseMs: 250, capMs: 3000, initialDelayMaxMs: 500, dropDelayMaxMs: 1000 },
      },
      uploads: { host: store.host, ca: storeCa, urlTimeoutMs: 5000, retry: { baseMs: 500, capMs: 4000 } },
    });
    const cams: Camera[] = [];
    for (let i = 0; i < opts.cameras; i++) {
      const serial = `CAM-EV-${String(i + 1).padStart(3, '0')}`;
      const registry = new CommandRegistry();
      const { paths, queue, link } = openLinkCamera({
        root: join(root, serial),
        serial,
        identity: { ...deviceCa.issueClient(serial), brokerCa: serverCa.certPem },
        config,
        commands: registry,
        random: Math.random,
      });
      const uploads = createUploadService({
        config,
        indexFile: paths.uploadIndex,
        spoolDir: paths.eventSpool,
        serial,
        clock: systemClock,
        random: Math.random,
        logger: silentLogger(),
        events: queue,
        link: () => link,
      });
      uploads.registerCommands(registry);
      link.start();
      uploads.start();
      mkdirSync(paths.eventSpool, { recursive: true, mode: 0o700 });
      const cam = { serial, owner: i % 2 === 0 ? alice : bob, link, queue, uploads, spool: paths.eventSpool };
      cams.push(cam);
      closers.push(async () => {
        await uploads.stop();
        await link.stop();
        queue.close();
      });
    }
    const online = await reached(() => cams.every((c) => c.link.isOnline()), 60_000);
    if (!online) throw new Error('the event cameras did not all come online');
    log(`events incident: ${cams.length} event cameras online (owners alice and bob, alternating)`);

    const recorded: Array<{ a: SealedArtifact; duringOutage: boolean; at: number }> = [];
    let seq = 0;
    const record = async (cam: Camera, duringOutage: boolean) => {
      const eventId = `ev${(++seq).toString(36)}${Date.now().toString(36)}`;
      const startedAt = Date.now();
      for (const kind of ['snapshot', 'clip'] as const) {
        const id = `${cam.serial}-${eventId}-${kind === 'clip' ? 'clip' : 'snap'}`;
        const contentType = kind === 'clip' ? 'video/mp4' : 'image/jpeg';
        const sealed = await sealArtifact({
          kind,
          membershipVersion: 1,
          id,
          serial: cam.serial,
          contentType,
          startedAtMs: startedAt,
          durationMs: kind === 'clip' ? 2000 : 0,
          recipients: [{ kid: cam.owner.kid, publicKey: cam.owner.publicKey }],
          plaintext: kind === 'clip' ? media.mp4 : media.jpeg,
        });
        const path = join(cam.spool, `${id}.sealed`);
        writeFileAtomic(path, sealed);
        const a: SealedArtifact = {
          v: 1,
          id,
          eventId,
          kind,
          serial: cam.serial,
          startedAt,
          durationMs: kind === 'clip' ? 2000 : 0,
          size: sealed.length,
          sha256: createHash('sha256').update(sealed).digest('hex'),
          contentType,
          sealedTo: [cam.owner.kid],
          membershipVersion: 1,
          path,
        };
        await cam.uploads.sink.enqueue(a);
        recorded.push({ a, duringOutage, at: Date.now() });
      }
    };

    // Online: one event per camera, uploaded as it happens.
    await Promise.all(cams.map((c) => record(c, false)));
    await reached(() => dev.motion().length >= recorded.length, patience);

    // The outage: the broker goes away; cameras keep recording into their queues.
    const port = broker.port;
    await broker.close();
    await reached(() => cams.every((c) => !c.link.isOnline()), 15_000);
    log(`events incident: broker down for ${opts.outageSeconds} s; cameras keep recording`);
    const outageEnd = Date.now() + opts.outageSeconds * 1000;
    for (let k = 0; k < perOutage; k++) {
      await Promise.all(cams.map((c) => record(c, true)));
      const left = outageEnd - Date.now();
      if (left > 0) await holdFor(left / (perOutage - k), 'events recorded spread over the outage');
    }
    await holdFor(Math.max(0, outageEnd - Date.now()), 'the rest of the broker outage');
    broker = await startAedesBroker({ tls: brokerTls, port });
    const back = Date.now();
    const outageIds = new Set(recorded.filter((r) => r.duringOutage).map((r) => r.a.id));
    const received = () => new Set(dev.motion().map((m) => m.id));
    await reached(() => {
      const got = received();
      return [...outageIds].every((id) => got.has(id));
    }, patience);
    const drainSeconds = (Date.now() - back) / 1000;
    log(`events incident: broker back; outage artifacts drained in ${drainSeconds.toFixed(1)} s`);

    // Lost = no metadata, or the stored object is not the sealed bytes recorded.
    const byId = new Map(dev.motion().map((m) => [m.id, m]));
    let clipsLost = 0;
    let snapshotsLost = 0;
    for (const r of recorded) {
      const m = byId.get(r.a.id);
      const bytes = m ? await dev.fetch(m.key) : undefined;
      const ok = !!bytes && createHash('sha256').update(bytes).digest('hex') === r.a.sha256;
      if (!ok) {
        if (r.a.kind === 'clip') clipsLost++;
        else snapshotsLost++;
      }
    }
    const latencies = recorded
      .filter((r) => !r.duringOutage && byId.has(r.a.id))
      .map((r) => Date.parse(byId.get(r.a.id)!.receivedAt) - r.at)
      .sort((x, y) => x - y);

    // The mixed-up cache: each user asks for their thumbnails and opens what comes back.
    const owners = new Map(cams.map((c) => [c.serial, c.owner.user]));
    const cache = createEventCache({ uploads: dev, ownerOf: (s) => owners.get(s), mixUp: opts.share });
    let servedWrong = 0;
    let decodedWrong = 0;
    let decodedOwner = 0;
    for (const viewer of [alice, bob]) {
      for (const t of await cache.thumbnailsFor(viewer.user)) {
        const wrong = t.owner !== viewer.user;
        if (wrong) servedWrong++;
        // The strongest try: the viewer even knows which camera and id it really is.
        const r = await openArtifact(new Uint8Array(t.bytes), viewer.keyPair, {
          serial: t.record.serial,
          id: t.record.id,
        });
        const jpeg = r.ok && r.plaintext[0] === 0xff && r.plaintext[1] === 0xd8;
        if (jpeg && wrong) decodedWrong++;
        if (jpeg && !wrong) decodedOwner++;
      }
    }
    const dropped = cams.reduce((n, c) => n + c.uploads.status().dropped.total, 0);
    const clipsDuringOutage = recorded.filter((r) => r.duringOutage && r.a.kind === 'clip').length;
    const result: EventsIncidentResult = {
      cameras: cams.length,
      outageSeconds: opts.outageSeconds,
      snapshotsRecorded: recorded.filter((r) => r.a.kind === 'snapshot').length,
      clipsRecorded: recorded.filter((r) => r.a.kind === 'clip').length,
      clipsRecordedDuringOutage: clipsDuringOutage,
      clipsLost,
      snapshotsLost,
      artifactsDropped: dropped,
      snapshotsServedToWrongUser: servedWrong,
      snapshotsDecodedByWrongUser: decodedWrong,
      snapshotsDecodedByOwner: decodedOwner,
      drainSeconds,
      uploadLatencyMedianMs: latencies.length ? latencies[Math.floor(latencies.length / 2)]! : -1,
      ok: false,
    };
    result.ok =
      clipsLost === 0 &&
      snapshotsLost === 0 &&
      clipsDuringOutage > 0 &&
      servedWrong > 0 &&
      decodedWrong === 0 &&
      decodedOwner > 0;
    return result;
  } finally {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

export function formatEventsIncident(r: EventsIncidentResult): string {
  return [
    `events: ${r.cameras} cameras recorded ${r.snapshotsRecorded} snapshots and ${r.clipsRecorded} clips; ${r.clipsRecordedDuringOutage} clips during the ${r.outageSeconds} s outage`,
    `  after it: clips lost ${r.clipsLost} (goal 0), snapshots lost ${r.snapshotsLost}, dropped by bounds ${r.artifactsDropped}; drained ${r.drainSeconds.toFixed(1)} s after the broker came back; event → uploaded median ${r.uploadLatencyMedianMs} ms online`,
    `  mixed-up thumbnail cache: ${r.snapshotsServedToWrongUser} served to the wrong user, decoded by the wrong user ${r.snapshotsDecodedByWrongUser} (goal 0), decoded by their owner ${r.snapshotsDecodedByOwner} (> 0)`,
  ].join('\n');
}
