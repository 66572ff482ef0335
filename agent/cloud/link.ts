/**
 * The camera's only line to the cloud: mqtt.js over mutual TLS, one client per attempt, with our own
 * reconnect loop (mqtt.js's fixed 1 s retry is switched off) driven by ./backoff.ts. On connect it
 * publishes the retained `state`, subscribes to `cmd/+`, and delivers the queued security events;
 * commands go through ./commands.ts one at a time. Must never trust anything but the broker CA from
 * the state dir, never publish or subscribe outside `lenscap/v1/<serial>/`, and never act on a
 * message whose topic is not one of its own command topics.
 */
import { EventEmitter } from 'node:events';
import { lookup as dnsLookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { MqttClient, type IClientOptions, type Packet } from 'mqtt';
import { unrefTimer, type Random, type Time } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { LenscapError, describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import type { EventQueue } from '../audit/event-queue.ts';
import { Backoff, type Decision, type Outcome } from './backoff.ts';
import { describeOutcome, refusedProtocolVersion } from './connect-outcome.ts';
import { EndpointRotation, parseEndpoints, type Target } from './endpoints.ts';
import {
  CommandRegistry,
  createCommandDispatcher,
  type CommandDispatcher,
  type CommandReply,
} from './commands.ts';
import { classifyIncoming, topicsFor, type Topics } from './topics.ts';

export interface CloudLinkDeps {
  config: Pick<Config, 'cloud'>;
  serial: string;
  paths: Pick<StateLayout, 'deviceKey' | 'deviceCert' | 'chain' | 'brokerCa'>;
  /** Reconnect backoff, the name-lookup guard and the stop grace run on it. */
  clock: Time;
  random: Random;
  logger: Logger;
  /** Security events to deliver (the on-disk queue). Also receives command refusals. */
  events: Pick<EventQueue, 'emit' | 'deliver' | 'onEnqueued'>;
  commands: CommandRegistry;
  /** Extra fields of the retained online state (gate URL, versions). */
  state?: () => Record<string, unknown>;
  /** Every address a broker host name resolves to (default: the system resolver, all families). */
  lookup?: (host: string) => Promise<string[]>;
}

export interface LinkCounters {
  /** Successful connections since start. */
  connects: number;
  /** Successful connections after the first. */
  reconnects: number;
  /** Attempts that did not end in a connection. */
  failedAttempts: number;
  commandsHandled: number;
  commandsRefused: number;
  commandDuplicates: number;
}

export interface CloudLink extends EventEmitter {
  /** Starts the connect loop (after the random initial delay). Returns at once. */
  start(): void;
  /** Publishes `{"online":false}` (retained) if connected, then closes. */
  stop(): Promise<void>;
  isOnline(): boolean;
  /** Sends a telemetry sample (QoS 0). False when offline: telemetry is not queued. */
  publishTelemetry(sample: object): Promise<boolean>;
  /**
   * Publishes QoS 1 on `motion` (artifact metadata) or `req/<op>` (a request the cloud answers with
   * the command `<op>`); resolves on PUBACK, rejects with ERR_CLOUD_OFFLINE when the link is down.
   * Never queued here: the caller (the upload queue) owns retrying.
   */
  publishData(target: { kind: 'motion' } | { kind: 'request'; op: string }, payload: object): Promise<void>;
  counters(): LinkCounters;
  /** The last decision of the reconnect policy (tests, status). */
  lastDecision(): Decision | undefined;
  /** Where the current (or next) attempt goes: the configured URL and the address chosen for it. */
  target(): Target | undefined;
  /** Resolves once connected (tests and the controller's start-up wait). */
  waitOnline(timeoutMs: number): Promise<void>;
}

const OFFLINE = JSON.stringify({ online: false });
const STOP_GRACE_MS = 2000;
/** Commands waiting for their turn; beyond this they are dropped (logged). */
const MAX_COMMAND_BACKLOG = 1000;

/** `host`, `host:port` or `[v6]:port` from a server reference; undefined if it is anything else. */
export function parseServerReference(
  ref: string,
  defaultPort: number,
): { host: string; port: number } | undefined {
  const first = ref.split(/[\s,]+/)[0] ?? '';
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(first);
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : defaultPort;
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

export function createCloudLink(deps: CloudLinkDeps): CloudLink {
  const cfg = deps.config.cloud;
  if (!cfg.url)
    throw new LenscapError('ERR_CLOUD_NO_URL', 'cloud.url is not set: there is no broker to connect to');
  const rotation = new EndpointRotation(parseEndpoints(cfg.url), deps.random, cfg.servername);
  const lookup =
    deps.lookup ??
    (async (host: string) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address));
  const log = deps.logger.child({ component: 'cloud' });
  const timers = deps.clock;
  const topics: Topics = topicsFor(deps.serial, { dotsSplitLevels: cfg.dotsSplitLevels });
  const backoff = new Backoff(
    { ...cfg.backoff, followServerReference: cfg.followServerReference },
    deps.clock,
    deps.random,
  );
  const dispatcher: CommandDispatcher = createCommandDispatcher({
    registry: deps.commands,
    serial: deps.serial,
    maxBytes: cfg.commandMaxBytes,
    logger: log,
    events: deps.events,
    clock: deps.clock,
  });

  const emitter = new EventEmitter();
  let client: MqttClient | undefined;
  let online = false;
  let stopped = true;
  let timer: unknown;
  let decision: Decision | undefined;
  let redirect: { host: string; port: number } | undefined;
  let commandChain: Promise<void> = Promise.resolve();
  let backlog = 0;
  const counters = { connects: 0, reconnects: 0, failedAttempts: 0 };
  // The MQTT version spoken: the configured one, or 3.1.1 once a broker refused MQTT 5 (at most one
  // fall-back per link; a broker refusing 3.1.1 too is a configuration error).
  let protocolVersion: 4 | 5 = cfg.protocolVersion;
  let fellBack = false;
  /** Failed attempts since the last connection: the first is info, the rest warn. */
  let failStreak = 0;

  const schedule = (d: Decision) => {
    decision = d;
    if (d.error) {
      log.error({ code: d.error.code, retryInMs: d.delayMs }, d.error.message);
      emitter.emit('refused', d.error);
    } else {
      log.info(
        { delayMs: d.delayMs, attempt: d.attempt, reason: d.reason },
        'cloud link: next attempt scheduled',
      );
    }
    if (d.serverReference) {
      redirect = parseServerReference(d.serverReference, rotation.endpoint().port);
      if (redirect)
        log.warn(
          { host: redirect.host, port: redirect.port },
          'cloud link: broker pointed to another server',
        );
    }
    timer = timers.setTimeout(() => {
      timer = undefined;
      if (!stopped) attempt();
    }, d.delayMs);
  };

  const tlsMaterial = () => {
    const chain = (() => {
      try {
        return readFileSync(deps.paths.chain, 'utf8');
      } catch {
        return '';
      }
    })();
    return {
      key: readFileSync(deps.paths.deviceKey),
      cert: readFileSync(deps.paths.deviceCert, 'utf8') + (chain.trim() ? `\n${chain}` : ''),
      // The one trust anchor: passing `ca` replaces Node's bundled roots for this connection.
      ca: readFileSync(deps.paths.brokerCa),
    };
  };

  // Publishes still waiting for their PUBACK, per client: failed at once when that client closes,
  // so the event queue never waits on a connection that is gone.
  const inflight = new WeakMap<MqttClient, Set<(err: Error) => void>>();
  const publishAsync = (
    c: MqttClient,
    topic: string,
    payload: string,
    opts: { qos: 0 | 1; retain?: boolean },
  ) =>
    new Promise<void>((resolve, reject) => {
      if (!topics.owns(topic))
        return reject(
          new LenscapError('ERR_CLOUD_TOPIC', "refusing to publish outside this camera's prefix"),
        );
      let set = inflight.get(c);
      if (!set) inflight.set(c, (set = new Set()));
      const fail = (err: Error) => reject(err);
      set.add(fail);
      c.publish(topic, payload, { qos: opts.qos, retain: opts.retain ?? false }, (err) => {
        set.delete(fail);
        if (err) reject(err);
        else resolve();
      });
    });
  const failInflight = (c: MqttClient) => {
    const set = inflight.get(c);
    if (!set) return;
    inflight.delete(c);
    for (const fail of set)
      fail(new LenscapError('ERR_CLOUD_OFFLINE', 'connection closed before the broker acknowledged'));
  };

  const onConnected = (c: MqttClient) => {
    online = true;
    backoff.connected();
    failStreak = 0;
    counters.connects++;
    if (counters.connects > 1) counters.reconnects++;
    log.info(
      { connects: counters.connects, host: lastTarget?.host, port: lastTarget?.port },
      'cloud link: online',
    );
    // `online: true` is announced once the command subscription is in place (SUBACK): the cloud acts
    // on it at once, and on a broker where a subscription takes a while (RabbitMQ declares a queue
    // and binds it cluster-wide) a command sent in between would reach no one.
    const announce = () => {
      if (client !== c || !online) return;
      const state = { online: true, at: new Date(deps.clock.now()).toISOString(), ...(deps.state?.() ?? {}) };
      publishAsync(c, topics.state, JSON.stringify(state), { qos: 1, retain: true }).catch((err) =>
        log.warn({ err: describeError(err) }, 'cloud link: state not published'),
      );
    };
    const subOpts = protocolVersion === 5 ? { qos: cfg.commandQos, rh: 2 } : { qos: cfg.commandQos };
    c.subscribe(topics.commandFilter, subOpts, (err, granted) => {
      announce();
      if (
        err ||
        !granted ||
        granted.some((g) => g.qos === 128 || (g as { reasonCode?: number }).reasonCode === 128 || g.qos > 2)
      ) {
        log.error(
          { code: 'ERR_CLOUD_SUBSCRIBE_REFUSED', err: err?.message },
          'cloud link: the broker refused our command subscription (ACL?)',
        );
      }
    });
    emitter.emit('online');
    void deps.events.deliver((json) =>
      online && client === c
        ? publishAsync(c, topics.events, json, { qos: 1 })
        : Promise.reject(new Error('offline')),
    );
  };

  const onMessage = (c: MqttClient, topic: string, payload: Buffer, packet: { retain?: boolean }) => {
    const incoming = classifyIncoming(topics, topic);
    if (incoming.kind !== 'command')
      return dispatcher.refuseTopic(topic, incoming.kind === 'bad_op' ? 'bad_op' : 'foreign_topic');
    if (packet.retain) {
      // A retained command would act again after every reconnect: commands must be live.
      return dispatcher.refuseTopic(topic, 'foreign_topic');
    }
    const op = incoming.op;
    if (backlog >= MAX_COMMAND_BACKLOG) {
      // A flood: the broker's flow control should prevent it; never let memory grow without bound.
      log.warn({ op, code: 'ERR_COMMAND_BUSY' }, 'cloud link: command backlog full, command dropped');
      return;
    }
    backlog++;
    commandChain = commandChain.then(async () => {
      let reply: CommandReply | undefined;
      try {
        reply = await dispatcher.dispatch(op, payload);
      } catch (err) {
        log.error({ op, err: describeError(err) }, 'cloud link: command dispatch failed');
        reply = {
          id: null,
          status: 'error',
          error: { code: 'ERR_COMMAND_FAILED', message: 'the command failed on the camera' },
        };
      }
      backlog--;
      if (!reply) return;
      // Not awaited: mqtt.js keeps publish order, and the next command need not wait for a PUBACK.
      void publishAsync(c, topics.reply(op), JSON.stringify(reply), { qos: 1 }).catch((err) =>
        log.warn({ op, err: describeError(err) }, 'cloud link: reply not delivered'),
      );
    });
  };

  let lastTarget: Target | undefined;

  // Names are resolved here, not by mqtt.js, so every address of a name is tried in turn (one per
  // cluster node behind one DNS name); bounded, since getaddrinfo has no timeout of its own.
  const attempt = () => {
    if (redirect || !rotation.needsLookup()) return connect();
    const name = rotation.endpoint().host;
    let settled = false;
    const done = (addrs: string[], err?: unknown) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(guard);
      if (err) log.info({ host: name, err: describeError(err) }, 'cloud link: broker name did not resolve');
      rotation.learn(addrs);
      if (!stopped) connect();
    };
    const guard = timers.setTimeout(
      () => done([], new LenscapError('ERR_CLOUD_LOOKUP', 'name lookup timed out')),
      cfg.connectTimeoutMs,
    );
    lookup(name).then(
      (addrs) => done(addrs),
      (err) => done([], err),
    );
  };

  const connect = () => {
    let material: ReturnType<typeof tlsMaterial>;
    try {
      material = tlsMaterial();
    } catch (err) {
      counters.failedAttempts++;
      log.error(
        { code: 'ERR_CLOUD_IDENTITY_MISSING', err: (err as Error).message },
        'cloud link: device key, certificate or broker CA missing in the state dir',
      );
      return schedule(backoff.next({ kind: 'network', error: 'identity missing' }));
    }
    const usedRedirect = redirect !== undefined;
    const chosen = rotation.current();
    const target = redirect
      ? {
          ...chosen,
          host: redirect.host,
          port: redirect.port,
          servername: net.isIP(redirect.host) ? undefined : redirect.host,
        }
      : chosen;
    lastTarget = target;
    const servername = target.servername;
    const opts: IClientOptions = {
      protocol: 'mqtts',
      host: target.host,
      port: target.port,
      clientId: deps.serial,
      protocolVersion,
      clean: true,
      keepalive: cfg.keepaliveSeconds,
      connectTimeout: cfg.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      // mqtt-packet's number cache: 65,536 two-byte Buffers (~6 MB of heap, the largest single
      // thing in the idle agent) to save an allocation per packet id on a link that sends a
      // few packets a minute (issue 18).
      writeCache: false,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(servername ? { servername } : {}),
      ...material,
      will: { topic: topics.state, payload: Buffer.from(OFFLINE), qos: 1, retain: true },
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
    } as IClientOptions;

    let outcome: Outcome = { kind: 'network' };
    let finished = false;
    const spoken = protocolVersion;
    const c = new MqttClient((cl) => mqttsStream(cl, opts), opts);
    client = c;
    c.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'connack') {
        const code = spoken === 5 ? (packet.reasonCode ?? 0) : (packet.returnCode ?? 0);
        if (code !== 0)
          outcome = {
            kind: 'connack',
            protocolVersion: spoken,
            code,
            serverReference: packet.properties?.serverReference,
          };
      } else if (packet.cmd === 'disconnect') {
        outcome = {
          kind: 'disconnect',
          code: packet.reasonCode ?? 0,
          serverReference: packet.properties?.serverReference,
        };
      }
    });
    c.on('connect', () => {
      if (redirect && outcome.kind === 'network')
        log.info({ host: target.host }, 'cloud link: connected to the referenced server');
      onConnected(c);
    });
    c.on('message', (topic, payload, packet) => onMessage(c, topic, payload, packet));
    c.on('error', (err) => {
      if (outcome.kind === 'network') outcome = { kind: 'network', error: err.message };
      log.debug({ err: err.message }, 'cloud link: error');
    });
    c.on('close', () => {
      if (finished) return;
      finished = true;
      const wasOnline = online && client === c;
      if (client === c) {
        online = false;
        client = undefined;
      }
      c.removeAllListeners('message');
      failInflight(c);
      c.end(true);
      if (wasOnline) {
        log.warn({ reason: describeOutcome(outcome) }, 'cloud link: offline');
        emitter.emit('offline');
      } else {
        counters.failedAttempts++;
        failStreak++;
        if (refusedProtocolVersion(outcome) && !fellBack) {
          // A 3.1.1-only broker (aedes, the dev cloud's default): speak 3.1.1 from now on, once.
          fellBack = true;
          protocolVersion = 4;
          log.warn(
            { reason: describeOutcome(outcome), host: target.host, protocolVersion: 4 },
            'cloud link: the broker does not speak MQTT 5; falling back to MQTT 3.1.1 (set cloud.protocolVersion: 4 to skip this)',
          );
          if (stopped) return;
          return schedule(backoff.next({ kind: 'network', error: 'protocol version fall-back' }));
        }
        (failStreak > 1 ? log.warn : log.info).call(
          log,
          {
            reason: describeOutcome(outcome),
            host: target.host,
            port: target.port,
            failedInARow: failStreak,
          },
          'cloud link: connect attempt failed',
        );
        // A referenced server that does not answer: back to the configured one.
        if (redirect && outcome.kind === 'network') redirect = undefined;
      }
      // The next attempt goes to the next endpoint (a dead node is not retried before the others);
      // a failed referenced server sends us back to the configured list where we were.
      if (!usedRedirect) rotation.advance();
      if (stopped) return;
      schedule(backoff.next(outcome));
    });
  };

  deps.events.onEnqueued(() => {
    const c = client;
    if (online && c)
      void deps.events.deliver((json) =>
        online && client === c
          ? publishAsync(c, topics.events, json, { qos: 1 })
          : Promise.reject(new Error('offline')),
      );
  });

  return Object.assign(emitter, {
    start() {
      if (!stopped) return;
      stopped = false;
      log.info(
        { url: cfg.url, endpoints: rotation.size, protocolVersion: cfg.protocolVersion },
        'cloud link: starting',
      );
      schedule(backoff.initial());
    },

    async stop() {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      deps.events.onEnqueued(undefined);
      const c = client;
      if (!c) return;
      if (online) {
        // The retained offline state is our word; the will only covers a death.
        await Promise.race([
          publishAsync(c, topics.state, OFFLINE, { qos: 1, retain: true }).catch(() => undefined),
          new Promise((r) => unrefTimer(timers.setTimeout(() => r(undefined), STOP_GRACE_MS))),
        ]);
      }
      await new Promise<void>((resolve) => {
        const t = timers.setTimeout(() => {
          c.end(true);
          resolve();
        }, STOP_GRACE_MS);
        unrefTimer(t);
        c.end(false, {}, () => {
          timers.clearTimeout(t);
          resolve();
        });
      });
      online = false;
      client = undefined;
      log.info('cloud link: stopped');
    },

    isOnline: () => online,

    async publishTelemetry(sample: object) {
      const c = client;
      if (!online || !c) return false;
      try {
        await publishAsync(c, topics.telemetry, JSON.stringify(sample), { qos: 0 });
        return true;
      } catch {
        return false;
      }
    },

    async publishData(target: { kind: 'motion' } | { kind: 'request'; op: string }, payload: object) {
      const c = client;
      if (!online || !c) throw new LenscapError('ERR_CLOUD_OFFLINE', 'the cloud link is down');
      const topic = target.kind === 'motion' ? topics.motion : topics.request(target.op);
      await publishAsync(c, topic, JSON.stringify(payload), { qos: 1 });
    },

    counters(): LinkCounters {
      const d = dispatcher.counters();
      return {
        ...counters,
        commandsHandled: d.handled,
        commandsRefused: d.refused,
        commandDuplicates: d.duplicates,
      };
    },

    lastDecision: () => decision,

    target: () => lastTarget,

    // A bound on real I/O for callers (tests, start-up), so it stays on the real clock.
    waitOnline(timeoutMs: number) {
      if (online) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => {
          emitter.off('online', on);
          reject(new LenscapError('ERR_CLOUD_OFFLINE', `cloud link not online within ${timeoutMs} ms`));
        }, timeoutMs);
        const on = () => {
          clearTimeout(t);
          resolve();
        };
        emitter.once('online', on);
      });
    },
  }) as CloudLink;
}

/**
 * The MQTT-over-TLS stream, as mqtt.js's own `mqtts` builder makes it (lib/connect/tls.js: a TLS
 * error reaches the client as 'error' and ends the socket; an unauthorized peer is an error).
 * Built here rather than through `mqtt.connect()`, whose first call loads every transport mqtt.js
 * has — its WebSocket client (ws) and SOCKS proxy (socks, ip-address): ~0.5 MB of source the
 * link never uses, resident for the agent's life (issue 18).
 */
function mqttsStream(client: MqttClient, opts: IClientOptions) {
  const host = opts.host ?? 'localhost';
  const socket = tlsConnect({
    ...(opts as ConnectionOptions),
    host,
    port: opts.port ?? 8883,
    // As mqtt.js: a name is its own SNI unless one is given; an address sends none.
    ...(!opts.servername && net.isIP(host) === 0 ? { servername: host } : {}),
  });
  const onTlsError = (err: Error) => {
    client.emit('error', err);
    socket.end();
  };
  socket.on('secureConnect', () => {
    if (!socket.authorized) socket.emit('error', new Error('TLS not authorized'));
    else socket.removeListener('error', onTlsError);
  });
  socket.on('error', onTlsError);
  return socket;
}
