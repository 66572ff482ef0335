/**
 * The agent runner of tests and benches: a camera's state dir provisioned on the dev CA (identity,
 * pinned CAs, trust root and bundle, a signed binding), the cloud side a test watches the camera
 * from (mosquitto with the dev ACL and a cloud-identity client collecting the camera's topics), and
 * the whole agent (`startAgent`) on it, stopped once. Benches that need the agent in its own
 * process use harness/fleet/full-agent.ts (`runAgentChild`) on the same state.
 * Must never write outside the caller's temp dir, and never leave a broker, client or agent running
 * (everything is registered with the test's `after`).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { configSchema, type Config } from '../agent/config/schema.ts';
import { startAgent, type AgentDeps, type AgentHandle } from '../agent/controller.ts';
import { silentLogger } from '../agent/log.ts';
import { stateLayout, type StateLayout } from '../agent/state-layout.ts';
import { mosquittoAcl } from '../scripts/dev-cloud/broker-mosquitto.ts';
import { signBindingRecord } from '../scripts/dev-cloud/mint.ts';
import { loadOrCreateSigningKeys, type DevSigningKeys } from '../scripts/dev-cloud/signing-keys.ts';
import { startMosquitto, type TestMosquitto } from './mosquitto.ts';
import { makeTestPki, type TestPki } from './pki.ts';

export interface CameraIdentity {
  key: string;
  cert: string;
  /** The CA that signed the broker's certificate. */
  brokerCa: string;
  /** The pinned device CA (what the agent's start checks chain the device certificate to). */
  deviceCa?: string;
}

export interface CameraTrust {
  trustRootJwk: object;
  trustBundle: string;
  /** Signed binding record for this serial. */
  binding: string;
}

/** Writes the identity (key, cert, pinned CAs) where the cloud link and the agent read it, dirs 0700. */
export function writeIdentity(root: string, id: CameraIdentity): StateLayout {
  const paths = stateLayout(root);
  for (const d of [paths.root, paths.identityDir, paths.cloudDir, paths.trustDir])
    mkdirSync(d, { recursive: true, mode: 0o700 });
  chmodSync(paths.root, 0o700);
  chmodSync(paths.identityDir, 0o700);
  writeFileSync(paths.deviceKey, id.key, { mode: 0o600 });
  writeFileSync(paths.deviceCert, id.cert);
  writeFileSync(paths.chain, '');
  writeFileSync(paths.brokerCa, id.brokerCa);
  if (id.deviceCa) writeFileSync(paths.deviceCa, id.deviceCa);
  return paths;
}

/** Writes identity and trust where the agent reads them (agent/state-layout.ts), dirs 0700. */
export function writeCameraState(root: string, id: CameraIdentity, trust: CameraTrust): StateLayout {
  const paths = writeIdentity(root, id);
  writeFileSync(paths.trustRoot, JSON.stringify(trust.trustRootJwk));
  writeFileSync(paths.trustBundle, trust.trustBundle);
  writeFileSync(paths.binding, trust.binding);
  return paths;
}

export interface ProvisionedCamera {
  serial: string;
  pki: TestPki;
  keys: DevSigningKeys;
  paths: StateLayout;
}

/**
 * A camera provisioned as the dev cloud would: test PKI in `dir`, the dev signing keys in
 * `dir/dev`, state in `dir/state`, bound to `binding.owner` (and `viewers`) by a cloud-signed record.
 */
export async function provisionCamera(
  dir: string,
  serial: string,
  binding: { owner: string; viewers?: string[] },
): Promise<ProvisionedCamera> {
  const pki = makeTestPki(dir, [serial]);
  const keys = await loadOrCreateSigningKeys(join(dir, 'dev'));
  const device = pki.devices.get(serial)!;
  const paths = writeCameraState(
    join(dir, 'state'),
    { ...device, brokerCa: pki.serverCaPem, deviceCa: pki.caPem },
    {
      trustRootJwk: keys.trustRootJwk,
      trustBundle: keys.trustBundle,
      binding: signBindingRecord(keys.binding, { serial, version: 1, ...binding }),
    },
  );
  return { serial, pki, keys, paths };
}

/** What a test registers its cleanups with (node:test's `t`). */
export interface Cleanups {
  after(fn: () => unknown): void;
}

export interface TestCloud {
  broker: TestMosquitto;
  /** The broker's URL by name (`mqtts://localhost:PORT`), as the camera's server-name check wants. */
  url: string;
  client: MqttClient;
  /** Every message on the camera's topics, parsed, in arrival order. */
  messages: Array<{ topic: string; json: Record<string, unknown> }>;
}

/**
 * The cloud side for one provisioned camera: mosquitto (mTLS, the dev ACL for `cloudId`) and a
 * client with the cloud identity subscribed to `lenscap/v1/<serial>/#`.
 */
export async function startTestCloud(
  t: Cleanups,
  dir: string,
  cam: ProvisionedCamera,
  cloudId = 'lenscap-cloud-test',
): Promise<TestCloud> {
  const { pki } = cam;
  const broker = await startMosquitto({
    dir: join(dir, 'mosquitto'),
    caPem: pki.caPem,
    serverCert: pki.server.cert,
    serverKey: pki.server.key,
    acl: mosquittoAcl(cloudId),
  });
  t.after(() => broker.stop());
  const url = broker.url.replace(/^mqtts:\/\/[^:]+/, 'mqtts://localhost');
  const cloudCert = pki.device(cloudId);
  const client = await mqtt.connectAsync(url, {
    key: cloudCert.key,
    cert: cloudCert.cert,
    ca: pki.serverCaPem,
    clientId: cloudId,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  t.after(() => client.endAsync());
  const messages: TestCloud['messages'] = [];
  client.on('message', (topic, payload) =>
    messages.push({ topic, json: JSON.parse(payload.toString()) as Record<string, unknown> }),
  );
  await client.subscribeAsync(`lenscap/v1/${cam.serial}/#`, { qos: 1 });
  return { broker, url, client, messages };
}

/**
 * The whole agent in this process on a provisioned camera: test-pattern camera, HTTPS gate on a
 * free loopback port, capture on demand, the cloud link when `cloudUrl` is given. `overrides` are
 * merged per section over these.
 */
export function testAgentConfig(
  cam: ProvisionedCamera,
  cloudUrl?: string,
  overrides: Record<string, Record<string, unknown>> = {},
): Config {
  const sections: Record<string, Record<string, unknown>> = {
    gate: { host: '127.0.0.1', port: 0, tls: true },
    stream: { mode: 'on-demand', idleStopSeconds: 5 },
    camera: { driver: 'testpattern', width: 320, height: 180, fps: 15 },
    telemetry: { intervalSeconds: 5 },
    ...(cloudUrl
      ? { cloud: { url: cloudUrl, backoff: { initialDelayMaxMs: 0, baseMs: 200, capMs: 2000 } } }
      : {}),
  };
  for (const [k, v] of Object.entries(overrides)) sections[k] = { ...sections[k], ...v };
  return configSchema.parse({ stateDir: cam.paths.root, ...sections });
}

export type RunningAgent = AgentHandle & {
  /** Stops the agent once (later calls and the test's cleanup do nothing). */
  stopOnce(reason: string): Promise<void>;
};

/** `startAgent` with a silent logger and no environment overrides, stopped at the test's end. */
export async function runAgent(t: Cleanups, config: Config, deps: AgentDeps = {}): Promise<RunningAgent> {
  const agent = await startAgent(config, { logger: silentLogger(), env: {}, ...deps });
  let stopped: Promise<void> | undefined;
  const stopOnce = (reason: string) => (stopped ??= agent.stop(reason));
  t.after(() => stopOnce('test end'));
  return Object.assign(agent, { stopOnce });
}
