/**
 * The storm on a broker cluster (`bench/storm.ts --broker rabbitmq --nodes 3 --kill-node`): N full
 * cloud links (each its own serial, certificate, on-disk event queue; default reconnect policy; every
 * node's URL in cloud.url) on a real RabbitMQ cluster, a cloud client with a persistent (quorum)
 * session on a surviving node, then one node SIGKILLed. Security events are raised on every camera
 * just before and just after the kill. Measured: how many come back, the peak reconnects per second
 * (of the whole fleet), the time until 99 % of the dropped cameras are back, events sent and lost.
 * Must never leave a node, epmd or client behind (everything closed in finally blocks).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { configSchema } from '../agent/config/schema.ts';
import { EventQueue } from '../agent/audit/event-queue.ts';
import { CommandRegistry } from '../agent/cloud/commands.ts';
import type { CloudLink } from '../agent/cloud/link.ts';
import { startRabbitCluster, type RabbitCluster } from '../scripts/dev-cloud/broker-rabbitmq.ts';
import { DevCa } from '../scripts/dev-cloud/ca.ts';
import { issueMany } from '../harness/pki.ts';
import type { Figures } from './_json.ts';
import { reached } from '../harness/wait.ts';
import { openLinkCamera } from '../harness/fleet/camera.ts';

export interface ClusterStormOptions {
  clients: number;
  nodes: number;
  killNode: boolean;
  /** Steady state before the kill (the policy's counter resets after resetAfterMs up). */
  settleS: number;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Camera {
  serial: string;
  link: CloudLink;
  queue: EventQueue;
}

export async function clusterStorm(o: ClusterStormOptions): Promise<Figures> {
  const work = mkdtempSync(join(tmpdir(), 'lenscap-storm-rmq-'));
  const N = o.clients;
  const serials = Array.from({ length: N }, (_, i) => `STORM-${String(i).padStart(5, '0')}`);
  let cluster: RabbitCluster | undefined;
  const cams: Camera[] = [];
  let cloud: mqtt.MqttClient | undefined;
  try {
    const ca = DevCa.create('storm CA');
    const server = ca.issueServer('localhost');
    const cloudPem = ca.issueClient('lenscap-cloud');
    const pems = await issueMany(ca, serials);
    const t0 = Date.now();
    cluster = await startRabbitCluster({
      dir: join(work, 'rmq'),
      nodes: o.nodes,
      tls: { key: server.key, cert: server.cert, ca: ca.certPem },
      devices: serials,
    });
    o.log(`cluster of ${o.nodes} ready with ${N} device users in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const urls = cluster.urls;

    // The cloud: persistent session on the last node (not the one that dies), failing over if needed.
    const received = new Set<string>();
    const order = [...urls].reverse();
    cloud = mqtt.connect({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: Number(new URL(order[0]!).port),
      servers: order.map((u) => ({
        host: '127.0.0.1',
        port: Number(new URL(u).port),
        protocol: 'mqtts' as const,
      })),
      key: cloudPem.key,
      cert: cloudPem.cert,
      ca: ca.certPem,
      protocolVersion: 4,
      clientId: 'lenscap-cloud-storm',
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    cloud.on('message', (topic, payload) => {
      if (!topic.endsWith('/events')) return;
      try {
        const e = JSON.parse(payload.toString()) as { serial?: string; data?: { storm?: number } };
        if (e.data && typeof e.data.storm === 'number') received.add(`${e.serial}:${e.data.storm}`);
      } catch {
        /* not ours */
      }
    });
    await new Promise<void>((resolve, reject) => {
      cloud!.once('connect', () => resolve());
      cloud!.once('error', reject);
    });
    await cloud.subscribeAsync('lenscap/v1/+/events', { qos: 1 });

    const config = configSchema.parse({ cloud: { url: urls, protocolVersion: 4, commandQos: 0 } });
    const registry = new CommandRegistry();
    for (const [i, serial] of serials.entries()) {
      const { link, queue } = openLinkCamera({
        root: join(work, 'cams', serial),
        serial,
        identity: { ...pems[i]!, brokerCa: ca.certPem },
        config,
        commands: registry,
      });
      cams.push({ serial, link, queue });
    }
    const tBoot = Date.now();
    for (const c of cams) c.link.start();
    const up = await reached(() => cams.every((c) => c.link.isOnline()), 180_000, { stepMs: 250 });
    const online = cams.filter((c) => c.link.isOnline()).length;
    o.log(`${online}/${N} online in ${((Date.now() - tBoot) / 1000).toFixed(1)} s; settling ${o.settleS} s`);
    if (!up) throw new Error(`only ${online}/${N} online after 180 s`);
    await sleep(o.settleS * 1000);

    // Who sits on the node that will die.
    const victims = o.killNode ? cams.filter((c) => c.link.target()?.index === 0) : [];
    const perNode = urls.map((_, i) => cams.filter((c) => c.link.target()?.index === i).length);
    o.log(`cameras per node: ${perNode.join(' / ')}`);

    let sent = 0;
    const raise = (round: number) => {
      for (const c of cams) {
        c.queue.emit({
          type: 'grant_refused',
          at: new Date().toISOString(),
          serial: c.serial,
          reason: 'expired',
          source: 'storm',
          data: { storm: round },
        });
        sent++;
      }
    };
    const backAt = new Map<string, number>();
    const connectTimes: number[] = [];
    for (const c of cams)
      c.link.on('online', () => {
        const t = Date.now();
        connectTimes.push(t);
        if (!backAt.has(c.serial)) backAt.set(c.serial, t);
      });

    raise(0); // just before the kill
    const killedAt = Date.now();
    if (o.killNode) await cluster.killNode(0);
    o.log(`node 1 killed (${victims.length} cameras on it)`);
    raise(1); // just after: queued on disk by the cameras that lost their node
    const victimSet = new Set(victims.map((c) => c.serial));
    const allBack = await reached(
      () => victims.every((c) => backAt.has(c.serial)) && cams.every((c) => c.link.isOnline()),
      240_000,
      { stepMs: 250 },
    );
    const drained = await reached(
      () => cams.every((c) => c.queue.size === 0) && received.size >= sent,
      120_000,
      { stepMs: 250 },
    );
    o.log(
      `back: ${allBack ? 'all' : 'NOT all'}; queues drained: ${drained}; events ${received.size}/${sent}`,
    );

    const backTimes = victims
      .map((c) => backAt.get(c.serial))
      .filter((t): t is number => t !== undefined)
      .map((t) => (t - killedAt) / 1000)
      .sort((a, b) => a - b);
    const perSecond: number[] = [];
    for (const t of connectTimes) {
      const s = Math.floor((t - killedAt) / 1000);
      if (s >= 0) perSecond[s] = (perSecond[s] ?? 0) + 1;
    }
    const peak = Math.max(0, ...Array.from(perSecond, (v) => v ?? 0)); // a sparse array: no holes
    const q = (p: number) =>
      backTimes.length >= Math.ceil(p * victims.length) && victims.length > 0
        ? backTimes[Math.ceil(p * victims.length) - 1]!
        : null;
    const back = cams.filter((c) => c.link.isOnline()).length;
    const figures: Figures = {
      nodes: o.nodes,
      killedNodes: o.killNode ? 1 : 0,
      clients: N,
      droppedClients: victims.length,
      backFraction: back / N,
      droppedBackFraction: victims.length ? backTimes.length / victims.length : 1,
      peakFraction: peak / N,
      peakPerSec: peak,
      p50BackS: q(0.5),
      p99BackS: q(0.99),
      maxBackS: backTimes.length ? backTimes[backTimes.length - 1]! : null,
      eventsSent: sent,
      eventsLost: sent - received.size,
      capS: config.cloud.backoff.capMs / 1000,
      dropDelayMaxS: config.cloud.backoff.dropDelayMaxMs / 1000,
    };
    o.log(
      [
        `${back}/${N} online at the end; ${backTimes.length}/${victims.length} dropped cameras back`,
        `peak reconnects ${peak}/s (${((peak / N) * 100).toFixed(1)} % of the fleet; goal ≤ 10 %)`,
        `dropped cameras back: 50 % ${q(0.5)?.toFixed(1)} s, 99 % ${q(0.99)?.toFixed(1)} s`,
        `events: ${sent} sent around the kill, ${sent - received.size} lost`,
        victimSet.size ? '' : '(no node killed)',
      ]
        .filter(Boolean)
        .join('\n'),
    );
    return figures;
  } finally {
    await Promise.all(cams.map((c) => c.link.stop().catch(() => undefined)));
    for (const c of cams) c.queue.close();
    cloud?.end(true);
    await cluster?.close().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}
