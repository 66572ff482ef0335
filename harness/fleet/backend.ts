/**
 * The cloud side of the fleet runs (bench/idle.ts, bench/soak.ts, the incident run): the dev CAs and
 * signing keys under `work/dev`, a real mosquitto with the dev cloud's per-serial ACL
 * (`mosquittoAcl`) and persistent sessions saved on every change (the cloud's subscription and its
 * queued events survive a staged outage, even a SIGKILL, as with a production broker's durable sessions),
 * restartable on the same port, and the bench cloud connected as `lenscap-cloud`.
 * Must never be left running: close() in a finally block (it also stops a half-started backend).
 */
import { join } from 'node:path';
import { mosquittoAcl } from '../../scripts/dev-cloud/broker-mosquitto.ts';
import { loadOrCreateDevCas, type DevCa } from '../../scripts/dev-cloud/ca.ts';
import { loadOrCreateSigningKeys, type DevSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { startMosquitto, type TestMosquitto } from '../mosquitto.ts';
import { connectBenchCloud, type BenchCloud } from './cloud.ts';

export interface FleetBackend {
  deviceCa: DevCa;
  serverCa: DevCa;
  keys: DevSigningKeys;
  broker: TestMosquitto;
  cloud: BenchCloud;
  /** Closes the cloud client and kills the broker; never throws. */
  close(): Promise<void>;
}

/** mosquitto as the fleet benches run it: dev ACL, durable persistence, no log, no connection cap. */
export function startFleetBroker(dir: string, deviceCa: DevCa, serverCa: DevCa): Promise<TestMosquitto> {
  const server = serverCa.issueServer('localhost');
  return startMosquitto({
    dir,
    caPem: deviceCa.certPem,
    serverCert: server.cert,
    serverKey: server.key,
    acl: mosquittoAcl(),
    persistence: 'every-change',
    log: false,
    extraConf: ['max_connections -1', 'max_queued_messages 100000', 'tls_version tlsv1.2'],
  });
}

export async function startFleetBackend(work: string): Promise<FleetBackend> {
  const devDir = join(work, 'dev');
  const { deviceCa, serverCa } = loadOrCreateDevCas(devDir);
  const keys = await loadOrCreateSigningKeys(devDir);
  const broker = await startFleetBroker(join(work, 'broker'), deviceCa, serverCa);
  let cloud: BenchCloud;
  try {
    cloud = await connectBenchCloud({
      url: broker.url,
      ca: serverCa.certPem,
      ...deviceCa.issueClient('lenscap-cloud'),
    });
  } catch (err) {
    await broker.stop('SIGKILL').catch(() => undefined);
    throw err;
  }
  return {
    deviceCa,
    serverCa,
    keys,
    broker,
    cloud,
    async close() {
      await cloud.close().catch(() => undefined);
      await broker.stop('SIGKILL').catch(() => undefined);
    },
  };
}
