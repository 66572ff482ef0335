/**
 * The whole upload path with real parts: the agent's cloud link over mTLS to aedes, the dev cloud's
 * MQTT client answering `req/upload.url` with URLs signed by @aws-sdk/s3-request-presigner, the
 * HTTPS PUT to s3rver (SigV4 and checksum verified), the `motion` metadata. Then an outage (the
 * broker stopped while artifacts keep coming), every cloud fault one after the other, a foreign
 * artifact id, a restart mid-queue; each time nothing is lost and no URL query reaches a log line.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { systemClock } from '../../agent/clock.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { createLogger } from '../../agent/log.ts';
import { createUploadService, type UploadService } from '../../agent/uploads/service.ts';
import { startAedesBroker, type RunningBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { connectCloudClient, type CloudClient } from '../../scripts/dev-cloud/cloud-client.ts';
import { startObjectStore, type ObjectStore } from '../../scripts/dev-cloud/object-store.ts';
import { startDevUploads, type DevUploads } from '../../scripts/dev-cloud/uploads.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { makeLink, makePki, testConfig, writeState, type TestLink } from '../cloud/fixture.ts';
import { writeArtifact } from './helpers.ts';
import { quietFor, waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-UP1';

interface Rig {
  tmp: ReturnType<typeof makeTempDir>;
  pki: ReturnType<typeof makePki>;
  broker: RunningBroker;
  store: ObjectStore;
  cloud: CloudClient;
  dev: DevUploads;
  cam: TestLink;
  uploads: UploadService;
  spool: string;
  logText(): string;
  /** Stops uploads and the link (as a stopping agent does) and starts both again. */
  restart(): Promise<UploadService>;
}

async function rig(t: { after(fn: () => unknown): void }): Promise<Rig> {
  const tmp = makeTempDir('lenscap-upflow-');
  const pki = makePki();
  const broker = await startAedesBroker({
    tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.certPem },
  });
  const store = await startObjectStore({ dir: join(tmp.dir, 's3'), tls: pki.broker, caPem: pki.ca.certPem });
  const caFile = join(tmp.dir, 'store-ca.pem');
  writeFileSync(caFile, pki.ca.certPem);
  const cloud = await connectCloudClient({
    url: broker.url,
    key: pki.cloud.key,
    cert: pki.cloud.cert,
    ca: pki.ca.certPem,
    protocolVersion: 4,
  });
  const dev = startDevUploads({ cloud, store, expiresInSeconds: 60 });
  let log = '';
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(c, _e, cb) {
        log += c.toString();
        cb();
      },
    }),
  });
  const config = {
    ...testConfig(broker.url, { protocolVersion: 4 }),
    uploads: configSchema.shape.uploads.parse({
      host: store.host,
      ca: caFile,
      urlTimeoutMs: 400,
      retry: { baseMs: 40, capMs: 200 },
    }),
  };
  const paths = writeState(join(tmp.dir, 'cam'), pki, SERIAL);
  let cam = makeLink({ serial: SERIAL, paths, config, logger });
  const spool = join(paths.eventsDir, 'spool');
  const make = () => {
    const s = createUploadService({
      config,
      indexFile: paths.uploadIndex,
      spoolDir: spool,
      serial: SERIAL,
      clock: systemClock,
      random: Math.random,
      logger,
      events: cam.queue,
      link: () => cam.link,
    });
    return s;
  };
  let uploads = make();
  uploads.registerCommands(cam.registry);
  cam.link.start();
  uploads.start();
  await cam.link.waitOnline(10_000);
  t.after(async () => {
    await uploads.stop();
    await cam.link.stop().catch(() => undefined);
    cam.queue.close();
    dev.close();
    await cloud.close();
    await store.close();
    await broker.close().catch(() => undefined);
    tmp.cleanup();
  });
  return {
    tmp,
    pki,
    broker,
    store,
    cloud,
    dev,
    get cam() {
      return cam;
    },
    get uploads() {
      return uploads;
    },
    spool,
    logText: () => log,
    async restart() {
      await uploads.stop();
      await cam.link.stop();
      cam.queue.close();
      cam = makeLink({ serial: SERIAL, paths, config, logger });
      uploads = make();
      uploads.registerCommands(cam.registry);
      cam.link.start();
      uploads.start();
      return uploads;
    },
  } as Rig;
}

const spoolFiles = (dir: string) => {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.sealed'));
  } catch {
    return [];
  }
};

test(
  'upload → motion metadata → object stored byte for byte → spool file deleted',
  { timeout: 60_000 },
  async (t) => {
    const r = await rig(t);
    const snap = writeArtifact(r.spool, { serial: SERIAL, kind: 'snapshot', size: 2_000 });
    const clip = writeArtifact(r.spool, { serial: SERIAL, kind: 'clip', size: 300_000 });
    const bytes = new Map([snap, clip].map((a) => [a.id, readFileSync(a.path)]));
    await r.uploads.sink.enqueue(snap);
    await r.uploads.sink.enqueue(clip);
    await waitUntil(() => r.dev.motion(SERIAL).length === 2, 20_000, 'both motion records');
    for (const m of r.dev.motion(SERIAL)) {
      assert.equal(m.key, `${SERIAL}/${m.id}.sealed`);
      assert.deepEqual(m.sealedTo, ['kid-alice']);
      const stored = await r.dev.fetch(m.key);
      assert.ok(stored?.equals(bytes.get(m.id)!), `${m.id} stored exactly`);
    }
    await waitUntil(
      () => spoolFiles(r.spool).length === 0,
      5_000,
      'the spool to empty (files deleted after PUBACK)',
    );
    assert.equal(r.uploads.status().uploaded, 2);
  },
);

test(
  'an outage: artifacts queue while the broker is down; after it every one arrives',
  { timeout: 90_000 },
  async (t) => {
    const r = await rig(t);
    const port = r.broker.port;
    await r.broker.close();
    await waitUntil(() => !r.cam.link.isOnline(), 10_000, 'the link to go down');
    const arts = [];
    for (let i = 0; i < 6; i++)
      arts.push(
        writeArtifact(r.spool, { serial: SERIAL, kind: i % 2 ? 'clip' : 'snapshot', size: 5_000 + i }),
      );
    for (const a of arts) await r.uploads.sink.enqueue(a);
    await quietFor(300, 'no upload starts while the broker is down');
    assert.equal(r.uploads.status().queued, 6, 'all queued during the outage');
    assert.equal(r.uploads.status().uploaded, 0);
    const again = await startAedesBroker({
      tls: { key: r.pki.broker.key, cert: r.pki.broker.cert, ca: r.pki.ca.certPem },
      port,
    });
    t.after(() => again.close());
    await waitUntil(() => r.dev.motion(SERIAL).length === 6, 40_000, 'all six after reconnect').catch(
      (err) => {
        console.log(
          JSON.stringify({
            st: r.uploads.status(),
            online: r.cam.link.isOnline(),
            cloud: r.cloud.cameras(),
            dev: r.dev.counters(),
          }),
        );
        console.log(
          r
            .logText()
            .split('\n')
            .filter((l) => /upload|cloud link/.test(l))
            .slice(-15)
            .join('\n'),
        );
        throw err;
      },
    );
    assert.equal(r.uploads.status().dropped.total, 0, 'nothing lost');
    await waitUntil(
      () => spoolFiles(r.spool).length === 0,
      5_000,
      'the spool to empty (files deleted after PUBACK)',
    );
  },
);

test(
  'cloud faults each give their code, lose nothing, and leak no URL query',
  { timeout: 90_000 },
  async (t) => {
    const r = await rig(t);
    const faults = [
      ['http', 'ERR_UPLOAD_URL_SCHEME'],
      ['foreign_host', 'ERR_UPLOAD_URL_HOST'],
      ['expired', 'ERR_UPLOAD_URL_EXPIRED'],
      ['garbage', 'ERR_UPLOAD_URL_INVALID'],
      ['refuse', 'ERR_UPLOAD_URL_REFUSED'],
      ['silent', 'ERR_UPLOAD_URL_TIMEOUT'],
    ] as const;
    const ids: string[] = [];
    for (const [fault, code] of faults) {
      r.dev.setFault(fault);
      const a = writeArtifact(r.spool, { serial: SERIAL, kind: 'clip', size: 1_000 });
      ids.push(a.id);
      await r.uploads.sink.enqueue(a);
      await waitUntil(() => r.uploads.status().lastError?.code === code, 15_000, `${code} for ${fault}`);
      assert.equal(r.store.counters().accepted, 0, `${fault}: nothing stored`);
    }
    assert.equal(r.uploads.status().queued, faults.length, 'every artifact still queued');
    // The bad URLs were really handed out and refused (positive signal), their queries never logged.
    const log = r.logText();
    assert.match(log, /ERR_UPLOAD_URL_SCHEME/);
    assert.match(log, /lenscap-events\/CAM-UP1\//, 'the URL path reached the log');
    assert.doesNotMatch(log, /X-Amz-Signature=[0-9a-f]/);
    assert.doesNotMatch(log, /X-Amz-Credential=S3RVER/);
    const index =
      readFileSync(r.cam.paths.uploadIndex, 'utf8') + readFileSync(r.cam.paths.eventQueue, 'utf8');
    assert.doesNotMatch(index, /X-Amz-Signature=[0-9a-f]/);
    // The cloud heals: everything arrives.
    r.dev.setFault('none');
    await waitUntil(() => r.dev.motion(SERIAL).length === faults.length, 40_000, 'all after the faults');
    assert.deepEqual(
      r.dev
        .motion(SERIAL)
        .map((m) => m.id)
        .sort(),
      ids.sort(),
    );
    assert.equal(r.uploads.status().dropped.total, 0);
  },
);

test(
  'an artifact id of another serial gets no URL (wrong_serial); restart mid-queue resumes',
  { timeout: 60_000 },
  async (t) => {
    const r = await rig(t);
    const foreign = writeArtifact(r.spool, { serial: SERIAL, kind: 'snapshot', size: 100 });
    // Same file, a record that claims another camera's id prefix.
    const forged = { ...foreign, id: `CAM-OTHER-${foreign.eventId}-snap` };
    const { renameSync } = await import('node:fs');
    const forgedPath = join(r.spool, `${forged.id}.sealed`);
    renameSync(foreign.path, forgedPath);
    await r.uploads.sink.enqueue({ ...forged, path: forgedPath });
    await waitUntil(
      () => r.uploads.status().lastError?.code === 'ERR_UPLOAD_URL_REFUSED',
      10_000,
      'wrong_serial',
    );
    assert.equal(r.dev.counters().signed, 0);
    assert.equal(r.store.counters().accepted, 0);

    r.dev.setFault('silent');
    const a = writeArtifact(r.spool, { serial: SERIAL, kind: 'clip', size: 4_000 });
    await r.uploads.sink.enqueue(a);
    await waitUntil(() => r.dev.counters().requests >= 2, 10_000, 'the URL request for the clip');
    r.dev.setFault('none');
    const again = await r.restart();
    await waitUntil(
      () => r.dev.motion(SERIAL).some((m) => m.id === a.id),
      20_000,
      'the queued clip after restart',
    );
    assert.ok(again.status().queued >= 1, 'the foreign one stays queued (counted bound), never uploaded');
  },
);
