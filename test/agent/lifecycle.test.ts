// The composition root's start and stop order is the one docs/architecture.md states ("Start and
// stop order"): the whole agent (dev-CA identity, real ffmpeg test pattern, real gate), no cloud.
// A start that fails half way (the gate's port is taken) stops exactly what started, in reverse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startAgent } from '../../agent/controller.ts';
import { configSchema } from '../../agent/config/schema.ts';
import { silentLogger } from '../../agent/log.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import { makeTestPki } from '../../harness/pki.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const SERIAL = 'CAM-LIFE-1';
const root = new URL('../..', import.meta.url).pathname;

/** The service names the architecture doc lists, in start and in stop order. */
function documentedOrder(): { start: string[]; stop: string[] } {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Start and stop order'));
  const para = (label: string) => {
    const at = section.indexOf(label);
    assert.ok(at >= 0, `docs/architecture.md names the ${label} order`);
    const text = section.slice(at, section.indexOf('\n\n', at));
    return [...text.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!);
  };
  return { start: para('Services start:'), stop: para('Services stop:') };
}

async function provisionedState(dir: string) {
  const pki = makeTestPki(dir, [SERIAL]);
  const keys = await loadOrCreateSigningKeys(join(dir, 'dev'));
  const paths = stateLayout(join(dir, 'state'));
  for (const d of [paths.root, paths.identityDir, paths.cloudDir, paths.trustDir])
    mkdirSync(d, { recursive: true, mode: 0o700 });
  chmodSync(paths.root, 0o700);
  chmodSync(paths.identityDir, 0o700);
  const device = pki.devices.get(SERIAL)!;
  writeFileSync(paths.deviceKey, device.key, { mode: 0o600 });
  writeFileSync(paths.deviceCert, device.cert);
  writeFileSync(paths.chain, '');
  writeFileSync(paths.deviceCa, pki.caPem);
  writeFileSync(paths.brokerCa, pki.serverCaPem);
  writeFileSync(paths.trustRoot, JSON.stringify(keys.trustRootJwk));
  writeFileSync(paths.trustBundle, keys.trustBundle);
  writeFileSync(
    paths.binding,
    signBindingRecord(keys.binding, { serial: SERIAL, owner: 'alice', version: 1 }),
  );
  return paths;
}

function config(stateDir: string, port: number) {
  return configSchema.parse({
    stateDir,
    gate: { host: '127.0.0.1', port, tls: true },
    stream: { mode: 'on-demand' },
    camera: { driver: 'testpattern', width: 160, height: 90, fps: 5 },
  });
}

test(
  'services start in the documented order and stop in its exact reverse',
  { timeout: 60_000 },
  async (t) => {
    const { dir, cleanup } = makeTempDir('lenscap-life-');
    t.after(cleanup);
    const paths = await provisionedState(dir);
    const seen: string[] = [];
    const agent = await startAgent(config(paths.root, 0), {
      logger: silentLogger(),
      env: {},
      onService: (phase, name) => seen.push(`${phase} ${name}`),
    });
    const doc = documentedOrder();
    // No cloud.url here: the cloud link is the one service that is left out.
    const expectedStart = doc.start.filter((n) => n !== 'cloud-link');
    assert.deepEqual(agent.services(), expectedStart);
    assert.deepEqual(agent.health(), { ok: true, failing: [] });
    await agent.stop('test');
    assert.deepEqual(
      seen.filter((s) => s.startsWith('stopped ')).map((s) => s.slice('stopped '.length)),
      doc.stop.filter((n) => n !== 'cloud-link'),
    );
    assert.deepEqual([...doc.stop].reverse(), doc.start, 'the doc states stop as the reverse of start');
  },
);

test(
  'a start that fails half way stops what started, in reverse, and rethrows',
  { timeout: 60_000 },
  async (t) => {
    const { dir, cleanup } = makeTempDir('lenscap-life-');
    t.after(cleanup);
    const paths = await provisionedState(dir);
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    t.after(() => blocker.close());
    const port = (blocker.address() as { port: number }).port;
    const seen: string[] = [];
    await assert.rejects(
      startAgent(config(paths.root, port), {
        logger: silentLogger(),
        env: {},
        onService: (phase, name) => seen.push(`${phase} ${name}`),
      }),
      /EADDRINUSE/,
    );
    const started = seen.filter((s) => s.startsWith('started ')).map((s) => s.slice(8));
    const stopped = seen.filter((s) => s.startsWith('stopped ')).map((s) => s.slice(8));
    const doc = documentedOrder();
    assert.deepEqual(started, doc.start.slice(0, doc.start.indexOf('gate')));
    assert.deepEqual(stopped, [...started].reverse());
  },
);
