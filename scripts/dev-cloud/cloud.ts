/**
 * The full dev cloud in one process: identity side (device CA, HTTPS provisioning, trust root,
 * grant-issuer and binding keys — scripts/dev-cloud/server.ts and friends), the mTLS broker (aedes,
 * mosquitto or a 3-node RabbitMQ cluster), the dev cloud's own MQTT client, the relay for push mode, and the viewer page with
 * its API. `npm start` and `lenscap-dev` start it; it stops everything it started.
 * Must never listen beyond loopback unless told to (`host`: provisioning and the broker only, for a
 * board on the network), and never hand a camera anything but through provisioning
 * (identity) or signed cloud commands (binding).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LenscapError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import { startApi, type CameraInfo, type MintedGrant } from './api.ts';
import { DEFAULT_CLOUD_IDENTITY, startAedesBroker, type RunningBroker } from './broker-aedes.ts';
import { startMosquittoBroker } from './broker-mosquitto.ts';
import { startRabbitCluster, type RabbitCluster } from './broker-rabbitmq.ts';
import { connectCloudClient, type CloudClient } from './cloud-client.ts';
import { startRelay } from './relay.ts';
import { startObjectStore } from './object-store.ts';
import { startDevUploads, type DevUploads } from './uploads.ts';
import { mintGrant, signBindingRecord } from './mint.ts';
import { memberJkt } from './memberships.ts';
import { loadOrCreatePhoneKeys, makeDpopProof } from './owner-phone.ts';
import { loadOrCreateSigningKeys } from './signing-keys.ts';
import { startDevCloudIdentity } from './server.ts';
import type { ToolCode } from '../dev-codes.ts';

/** What the identity side of the dev cloud (CA, provisioning, keys) gives the rest of it. */
export interface DevCloudIdentity {
  provisioningUrl: string;
  /** File to pass as `lenscap provision --ca`. */
  provisioningCaFile: string;
  /** Trust for broker clients (device certificates and the cloud's own). */
  deviceCaPem: string;
  /** The broker's server key and certificate, and the CA a client checks it with. */
  brokerTls: { key: string; cert: string };
  brokerCaPem: string;
  /** The dev cloud's MQTT client identity (CN lenscap-cloud), issued by the device CA. */
  cloudClientTls: { key: string; cert: string };
  createToken(serial: string): Promise<string>;
  /** A binding record signed with the binding key (compact JWS) and the command payload carrying it. */
  bindingCommand(serial: string, owner: string, viewers: string[]): Promise<Record<string, unknown>>;
  mintGrant(
    serial: string,
    viewer: string,
    ttlSeconds: number,
    extra?: { relay?: string; scope?: string },
  ): Promise<MintedGrant>;
  close(): Promise<void>;
}

/** One start-up probe of a gate by the stack: which camera, and the window it ran in (ISO). */
export interface SelfCheck {
  serial: string;
  from: string;
  to: string;
}

export type BrokerKind = 'aedes' | 'mosquitto' | 'rabbitmq';

export interface StackOptions {
  /** The dev cloud's state dir, e.g. ./.lenscap/dev */
  dir: string;
  /** rabbitmq: a 3-node cluster (scripts/dev-cloud/broker-rabbitmq.ts). */
  broker?: BrokerKind;
  /** Port of the page (0/undefined = any free port). */
  pagePort?: number;
  /** Port of the provisioning/renewal service (0/undefined = any free port). */
  provisioningPort?: number;
  /** Port of the broker (0/undefined = any free port). */
  brokerPort?: number;
  /**
   * Where provisioning and the broker listen, and the name their certificates carry (default
   * 127.0.0.1): a board on the network needs this machine's address here.
   */
  host?: string;
  logger?: Logger;
}

export interface DevCloudStack {
  pageUrl: string;
  brokerUrl: string;
  /** Every node's URL (one for aedes and mosquitto): what a camera's cloud.url lists. */
  brokerUrls: string[];
  brokerKind: BrokerKind;
  provisioningUrl: string;
  provisioningCaFile: string;
  relayRtmpBase: string;
  /**
   * The object store sealed event artifacts are uploaded to (s3rver over HTTPS on loopback): what a
   * camera's `uploads.host` and `uploads.ca` name.
   */
  objectStore: { url: string; host: string; caFile: string; bucket: string };
  /** Presigned upload URLs per artifact, and the `motion` metadata cameras publish. */
  uploads: DevUploads;
  cloud: CloudClient;
  createToken(serial: string): Promise<string>;
  /** Claims a camera: signed binding record sent as the `binding` command; resolves on the camera's ok. */
  /** `timeoutMs` (default 10 s) bounds the camera's answer; an emulated board needs more. */
  claim(serial: string, owner: string, viewers?: string[], timeoutMs?: number): Promise<void>;
  mintGrant(
    serial: string,
    viewer: string,
    ttlSeconds: number,
    extra?: { relay?: string; scope?: string },
  ): Promise<MintedGrant>;
  /** Tells the page where a camera's gate is. */
  registerCamera(info: CameraInfo): void;
  /**
   * Records that the stack itself probed a camera's gate without a grant (npm start's start-up
   * check), so the page labels the resulting `grant_refused missing` events as that, not an attack.
   */
  noteSelfCheck(check: SelfCheck): void;
  pids(): Record<string, number>;
  close(): Promise<void>;
}

/**
 * The whole dev cloud: identity side (CAs, provisioning over HTTPS, from server.ts) and signing keys
 * (grants, binding records) under `opts.dir`, then broker, cloud client, relay and page.
 */
export async function startStack(opts: StackOptions): Promise<DevCloudStack> {
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const signing = await signingSide(opts.dir);
  const identity = await startDevCloudIdentity({
    devDir: opts.dir,
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.provisioningPort ? { port: opts.provisioningPort } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  return composeStack({ ...signing, ...identity }, opts);
}

/**
 * The signing half of the identity side: grants with the issuer key, binding records with the
 * binding key (scripts/dev-cloud/signing-keys.ts, the same keys the provisioning service pins).
 */
export async function signingSide(
  devDir: string,
): Promise<Pick<DevCloudIdentity, 'mintGrant' | 'bindingCommand'>> {
  const keys = await loadOrCreateSigningKeys(devDir);
  return {
    async mintGrant(serial, viewer, ttlSeconds, extra) {
      // Owner-held cameras: bind the grant to the viewer's key from the relayed membership.
      const jkt = memberJkt(devDir, serial, viewer);
      const g = mintGrant(keys.issuer, {
        serial,
        viewer,
        ttlSeconds,
        ...(jkt ? { jkt } : {}),
        ...(extra?.relay ? { relay: extra.relay } : {}),
        ...(extra?.scope ? { scope: extra.scope } : {}),
      });
      return { token: g.token, sub: viewer, aud: serial, jti: g.jti, iat: g.iat, exp: g.exp };
    },
    async bindingCommand(serial, owner, viewers) {
      // Version = ms now: every claim supersedes the last (the camera refuses rollbacks).
      return { record: signBindingRecord(keys.binding, { serial, owner, viewers }) };
    },
  };
}

/** Everything but the identity side, around a given identity side (tests pass their own). */
export async function composeStack(identity: DevCloudIdentity, opts: StackOptions): Promise<DevCloudStack> {
  const log = opts.logger ?? silentLogger();
  const kind = opts.broker ?? 'aedes';
  const closers: Array<() => Promise<void>> = [() => identity.close()];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse())
      await c().catch((err) => log.warn({ err: (err as Error).message }, 'dev cloud: error while stopping'));
  };
  try {
    const tlsOpts = { key: identity.brokerTls.key, cert: identity.brokerTls.cert, ca: identity.deviceCaPem };
    let cluster: RabbitCluster | undefined;
    if (kind === 'rabbitmq' && ((opts.host && opts.host !== '127.0.0.1') || opts.brokerPort))
      throw new LenscapError(
        'ERR_CLI_USAGE',
        'the RabbitMQ cluster listens on loopback, on free ports only: no --host or broker port with --broker rabbitmq',
      );
    const listen = {
      ...(opts.host ? { host: opts.host } : {}),
      ...(opts.brokerPort ? { port: opts.brokerPort } : {}),
    };
    const broker: RunningBroker =
      kind === 'rabbitmq'
        ? (cluster = await startRabbitCluster({
            tls: tlsOpts,
            dir: join(opts.dir, 'rabbitmq'),
            cloudIdentity: DEFAULT_CLOUD_IDENTITY,
            logger: log,
          }))
        : kind === 'mosquitto'
          ? await startMosquittoBroker({
              tls: tlsOpts,
              dir: join(opts.dir, 'mosquitto'),
              ...listen,
              cloudIdentity: DEFAULT_CLOUD_IDENTITY,
              logger: log,
            })
          : await startAedesBroker({
              tls: tlsOpts,
              cloudIdentity: DEFAULT_CLOUD_IDENTITY,
              logger: log,
              ...listen,
            });
    closers.push(() => broker.close());

    const cloud = await connectCloudClient({
      // Every node of a cluster, with a persistent (on RabbitMQ quorum-backed) session: the cloud's
      // subscription and the cameras' messages survive the node it is on.
      url: cluster ? cluster.urls : broker.url,
      ...(cluster ? { persistentSession: true } : {}),
      key: identity.cloudClientTls.key,
      cert: identity.cloudClientTls.cert,
      ca: identity.brokerCaPem,
      // aedes and RabbitMQ 3.10 speak MQTT 3.1.1 only.
      protocolVersion: kind === 'mosquitto' ? 5 : 4,
      logger: log,
    });
    closers.push(() => cloud.close());

    const relay = await startRelay({ dir: opts.dir, logger: log });
    closers.push(() => relay.close());

    // The object store serves with the broker's loopback certificate (same dev server CA).
    const store = await startObjectStore({
      dir: join(opts.dir, 'objects'),
      tls: identity.brokerTls,
      caPem: identity.brokerCaPem,
      logger: log,
    });
    closers.push(() => store.close());
    const storeCaFile = join(opts.dir, 'object-store-ca.pem');
    writeFileSync(storeCaFile, identity.brokerCaPem);
    const uploads = startDevUploads({ cloud, store, logger: log });
    closers.push(async () => uploads.close());

    const cameras = new Map<string, CameraInfo>();
    const selfChecks: SelfCheck[] = [];
    const api = await startApi({
      cloud,
      cameras: () => [...cameras.values()],
      mintGrant: (serial, viewer, ttl) => identity.mintGrant(serial, viewer, ttl),
      // A user whose membership key is their simulated phone's (npm start's claim): the phone
      // proves. A key held by the user's browser is proved by the page itself.
      dpopFor: (user, serial, token, url) => {
        const jkt = memberJkt(opts.dir, serial, user);
        const phones = join(opts.dir, 'phones');
        if (!jkt || !existsSync(join(phones, user, 'signing.key.pem'))) return undefined;
        const phone = loadOrCreatePhoneKeys(phones, user);
        return phone.jkt === jkt ? makeDpopProof(phone, { htm: 'GET', htu: url, token }) : undefined;
      },
      owner: { devDir: opts.dir, command: cloud.command.bind(cloud), relay },
      uploads,
      info: () => ({ broker: `${kind} (mTLS)`, relay: relay.rtmpBase, selfChecks }),
      port: opts.pagePort,
      logger: log,
    });
    closers.push(() => api.close());

    return {
      pageUrl: api.url,
      brokerUrl: broker.url,
      brokerUrls: cluster ? cluster.urls : [broker.url],
      brokerKind: kind,
      provisioningUrl: identity.provisioningUrl,
      provisioningCaFile: identity.provisioningCaFile,
      relayRtmpBase: relay.rtmpBase,
      objectStore: { url: store.url, host: store.host, caFile: storeCaFile, bucket: store.bucket },
      uploads,
      cloud,
      // On RabbitMQ a serial needs its user and rules before it can connect: added with its token.
      createToken: async (serial) => {
        await cluster?.addDevices([serial]);
        return identity.createToken(serial);
      },
      async claim(serial, owner, viewers = [], timeoutMs = 10_000) {
        const payload = await identity.bindingCommand(serial, owner, viewers);
        const reply = await cloud.command(serial, 'binding', payload, timeoutMs);
        if (reply.status !== 'ok') {
          throw new LenscapError<ToolCode>(
            'ERR_CLAIM_REFUSED',
            `${serial} refused the binding record: ${reply.error?.code ?? '?'} ${reply.error?.message ?? ''}`.trim(),
          );
        }
        log.info({ serial, owner }, 'camera claimed');
      },
      mintGrant: (serial, viewer, ttl, extra) => identity.mintGrant(serial, viewer, ttl, extra),
      registerCamera: (info) => void cameras.set(info.serial, info),
      noteSelfCheck: (check) => void selfChecks.push(check),
      pids: (): Record<string, number> =>
        cluster
          ? Object.fromEntries(
              cluster.nodes.flatMap((n, i) => (n.pid() ? [[`rabbitmq${i + 1}`, n.pid()!]] : [])),
            )
          : broker.pid
            ? { mosquitto: broker.pid }
            : {},
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
