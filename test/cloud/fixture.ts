/**
 * Shared set-up for the cloud link tests: a throwaway PKI (device CA that also signs the broker's
 * certificate), a state dir per camera laid out as state-layout says, and a link with a fast,
 * deterministic reconnect policy. Generated at run time; nothing here is committed key material.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { systemClock, type Random, type Time } from '../../agent/clock.ts';
import { configSchema, type Config } from '../../agent/config/schema.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import { stateLayout, type StateLayout } from '../../agent/state-layout.ts';
import { EventQueue } from '../../agent/audit/event-queue.ts';
import { CommandRegistry } from '../../agent/cloud/commands.ts';
import { createCloudLink, type CloudLink } from '../../agent/cloud/link.ts';
import { issue, makeCa, type Pem } from '../../harness/forge-pki.ts';

export interface TestPki {
  ca: ReturnType<typeof makeCa>;
  broker: Pem;
  cloud: Pem;
  device(cn: string): Pem;
}

export function makePki(): TestPki {
  const ca = makeCa('lenscap test device CA');
  const cache = new Map<string, Pem>();
  return {
    ca,
    broker: issue(ca, 'localhost', 'server'),
    cloud: issue(ca, 'lenscap-cloud', 'client'),
    device(cn: string) {
      let p = cache.get(cn);
      if (!p) cache.set(cn, (p = issue(ca, cn, 'client')));
      return p;
    },
  };
}

/** Writes a camera's identity and the broker CA where the link reads them. */
export function writeState(root: string, pki: TestPki, cn: string): StateLayout {
  const paths = stateLayout(root);
  mkdirSync(paths.identityDir, { recursive: true, mode: 0o700 });
  mkdirSync(paths.cloudDir, { recursive: true, mode: 0o700 });
  const pem = pki.device(cn);
  writeFileSync(paths.deviceKey, pem.key, { mode: 0o600 });
  writeFileSync(paths.deviceCert, pem.cert);
  writeFileSync(paths.brokerCa, pki.ca.cert);
  return paths;
}

export function testConfig(url: string | string[], cloud: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    cloud: {
      url,
      protocolVersion: 5,
      keepaliveSeconds: 10,
      connectTimeoutMs: 3000,
      backoff: { baseMs: 100, capMs: 800, initialDelayMaxMs: 0, dropDelayMaxMs: 0, resetAfterMs: 30000 },
      ...cloud,
    },
  });
}

export interface TestLink {
  link: CloudLink;
  queue: EventQueue;
  registry: CommandRegistry;
  paths: StateLayout;
}

export function makeLink(opts: {
  serial: string;
  paths: StateLayout;
  config: Config;
  logger?: Logger;
  random?: Random;
  /** The link's time seam (default: the system clock). */
  clock?: Time;
  state?: () => Record<string, unknown>;
  lookup?: (host: string) => Promise<string[]>;
}): TestLink {
  const logger = opts.logger ?? silentLogger();
  const queue = EventQueue.open({
    file: opts.paths.eventQueue,
    serial: opts.serial,
    maxEvents: opts.config.cloud.eventQueue.maxEvents,
    maxBytes: opts.config.cloud.eventQueue.maxBytes,
    clock: systemClock,
    logger,
  });
  const registry = new CommandRegistry();
  const link = createCloudLink({
    config: opts.config,
    serial: opts.serial,
    paths: opts.paths,
    clock: opts.clock ?? systemClock,
    random: opts.random ?? (() => 0.5),
    logger,
    events: queue,
    commands: registry,
    ...(opts.state ? { state: opts.state } : {}),
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
  });
  return { link, queue, registry, paths: opts.paths };
}

/** A raw mqtt.js client with a given certificate (the cloud, or a camera misbehaving). */
export async function rawClient(
  url: string,
  pem: Pem,
  ca: string,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const c = mqtt.connect(url, {
    key: pem.key,
    cert: pem.cert,
    ca,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 3000,
    ...extra,
  });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before connect')));
  });
  return c;
}

/** Collects messages on a client, with a waiter for a predicate. */
export function collect(c: MqttClient) {
  const got: Array<{ topic: string; payload: string; retain: boolean }> = [];
  const waiters: Array<() => void> = [];
  c.on('message', (topic, payload, packet) => {
    got.push({ topic, payload: payload.toString(), retain: packet.retain });
    for (const w of waiters.splice(0)) w();
  });
  return {
    got,
    async until<T>(pick: () => T | undefined, timeoutMs = 5000, what = 'message'): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = pick();
        if (v !== undefined) return v;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(got.slice(-5))}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  };
}

/** A clock whose timeouts wait until `open()` is called (so a test controls when a link reconnects). */
export function gatedTimers() {
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  let isOpen = false;
  const timers: Time = {
    ...systemClock,
    setTimeout: (fn, ms) => setTimeout(() => (isOpen ? fn() : void gate.then(fn)), ms),
  };
  return {
    timers,
    open() {
      isOpen = true;
      release();
    },
    close() {
      isOpen = false;
      gate = new Promise<void>((r) => (release = r));
    },
  };
}

export function waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

export function stateDir(root: string, name: string): string {
  return join(root, name);
}
