/**
 * Motion → snapshot + clip → sealed → uploaded, with every part real: the test pattern's moving
 * block through ffmpeg into the in-process hub, the events service (detection, ring, sealing to the
 * membership's viewer key), handing its artifacts to the upload service, which asks the dev cloud
 * for presigned URLs over its cloud link (aedes, mTLS) and PUTs them to s3rver over HTTPS. The
 * owner's key opens what the store holds; another key does not; the spool ends empty.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { systemClock } from '../../agent/clock.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { createEventsService } from '../../agent/events/service.ts';
import { silentLogger } from '../../agent/log.ts';
import { openArtifact } from '../../agent/sealing/artifact.ts';
import { createUploadService } from '../../agent/uploads/service.ts';
import { startAedesBroker, type RunningBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { connectCloudClient, type CloudClient } from '../../scripts/dev-cloud/cloud-client.ts';
import { startObjectStore, type ObjectStore } from '../../scripts/dev-cloud/object-store.ts';
import { startDevUploads, type DevUploads } from '../../scripts/dev-cloud/uploads.ts';
import { makeEventsFixture, SERIAL, type EventsFixture } from '../events/fixture.ts';
import { needsDrawtext } from '../../harness/ffmpeg.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { makeViewer, type TestViewer } from '../../harness/viewer-keys.ts';
import { makeLink, makePki, testConfig, writeState, type TestLink } from '../cloud/fixture.ts';
import { waitUntil } from '../../harness/wait.ts';

const skip = needsDrawtext();
let fx: EventsFixture;
let tmp: ReturnType<typeof makeTempDir>;
let broker: RunningBroker;
let store: ObjectStore;
let cloud: CloudClient;
let dev: DevUploads;
let cam: TestLink;
let alice: TestViewer;
let mallory: TestViewer;

before(async () => {
  if (skip.skip) return;
  fx = await makeEventsFixture();
  tmp = makeTempDir('lenscap-m2u-');
  const pki = makePki();
  broker = await startAedesBroker({
    tls: { key: pki.broker.key, cert: pki.broker.cert, ca: pki.ca.certPem },
  });
  store = await startObjectStore({ dir: join(tmp.dir, 's3'), tls: pki.broker, caPem: pki.ca.certPem });
  cloud = await connectCloudClient({
    url: broker.url,
    key: pki.cloud.key,
    cert: pki.cloud.cert,
    ca: pki.ca.certPem,
    protocolVersion: 4,
  });
  dev = startDevUploads({ cloud, store });
  cam = makeLink({
    serial: SERIAL,
    paths: writeState(join(tmp.dir, 'cam'), pki, SERIAL),
    config: testConfig(broker.url, { protocolVersion: 4 }),
  });
  alice = await makeViewer('kid-alice');
  mallory = await makeViewer('kid-mallory');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(tmp.dir, 'ca.pem'), pki.ca.certPem);
});
after(async () => {
  if (skip.skip) return;
  await cam.link.stop().catch(() => undefined);
  cam.queue.close();
  dev.close();
  await cloud.close();
  await store.close();
  await broker.close();
  await fx.close();
  tmp.cleanup();
});

test(
  'motion → snapshot + clip → sealed → uploaded → opened by the owner only',
  { ...skip, timeout: 120_000 },
  async () => {
    const config = configSchema.parse({
      uploads: { host: store.host, ca: join(tmp.dir, 'ca.pem'), retry: { baseMs: 100, capMs: 1000 } },
    });
    const uploads = createUploadService({
      config,
      indexFile: join(fx.dir, 'events', 'uploads.json'),
      spoolDir: fx.spoolDir,
      serial: SERIAL,
      clock: systemClock,
      random: Math.random,
      logger: silentLogger(),
      events: cam.queue,
      link: () => cam.link,
    });
    uploads.registerCommands(cam.registry);
    cam.link.start();
    uploads.start();
    await cam.link.waitOnline(10_000);
    const svc = createEventsService({
      serial: SERIAL,
      config: {
        ...configSchema.parse({}).events,
        enabled: true,
        preRollSeconds: 2,
        postRollSeconds: 1,
        maxClipSeconds: 8,
        cooldownSeconds: 2,
      },
      fps: 15,
      spoolDir: fx.spoolDir,
      clock: systemClock,
      logger: silentLogger(),
      events: new MemoryEventSink(),
      stream: fx.stream,
      privacy: fx.privacy,
      membership: () => ({ version: 7, keys: [alice.key] }),
      sink: uploads.sink,
      restartMs: 300,
    });
    svc.start();
    try {
      await waitUntil(
        () => svc.status().ring.gops >= 3 && svc.status().analysis.frames >= 10,
        30_000,
        'warm',
      );
      fx.motion(true);
      await waitUntil(() => svc.status().counters.events >= 1, 15_000, 'the motion event');
      await fx.motionLasts(svc, 1.5); // so the clip has motion between its rolls
      fx.motion(false);
      await waitUntil(
        () => dev.motion(SERIAL).length >= 2,
        40_000,
        'snapshot and clip uploaded and announced',
      );
    } finally {
      await svc.stop();
    }
    const got = dev.motion(SERIAL);
    const snap = got.find((m) => m.kind === 'snapshot')!;
    const clip = got.find((m) => m.kind === 'clip')!;
    assert.ok(snap && clip, JSON.stringify(got));
    assert.equal(snap.eventId, clip.eventId);
    assert.ok(clip.durationMs > 0);
    for (const m of [snap, clip]) {
      assert.deepEqual(m.sealedTo, ['kid-alice']);
      assert.equal(m.membershipVersion, 7);
      const bytes = await dev.fetch(m.key);
      assert.ok(bytes, `${m.key} stored`);
      const { createHash } = await import('node:crypto');
      assert.equal(createHash('sha256').update(bytes).digest('hex'), m.sha256);
      const no = await openArtifact(new Uint8Array(bytes), mallory.keyPair, { serial: SERIAL, id: m.id });
      assert.equal(no.ok, false);
      const yes = await openArtifact(new Uint8Array(bytes), alice.keyPair, { serial: SERIAL, id: m.id });
      assert.ok(yes.ok, `alice opens the ${m.kind}`);
      if (m.kind === 'snapshot') assert.deepEqual([...yes.plaintext.subarray(0, 2)], [0xff, 0xd8]);
    }
    await waitUntil(
      () => fx.spoolFiles().filter((f) => f.endsWith('.sealed')).length === 0,
      5_000,
      'an empty spool',
    );
    await uploads.stop();
  },
);
