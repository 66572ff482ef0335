/**
 * The dev cloud's own MQTT client (certificate CN `lenscap-cloud`): follows every camera's retained
 * `state`, its `telemetry` and its security `events`, and sends commands (`cmd/<op>`) awaiting the
 * matching `reply/<op>` by id. What the page shows comes from here, i.e. from what cameras said.
 * Given several broker URLs (the nodes of a cluster) it fails over like a camera does: it starts at a
 * random node, moves to the next one after a failed attempt or a lost connection, and waits the
 * agent's own capped full-jitter backoff (agent/cloud/backoff.ts) between attempts; with a persistent
 * session (RabbitMQ: a quorum queue) what cameras said while it moved is delivered when it is back.
 * Must never put a whole grant or binding record in a log line.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { Backoff, type BackoffOptions, type Outcome } from '../../agent/cloud/backoff.ts';
import { systemClock, systemRandom, type Random } from '../../agent/clock.ts';
import { LenscapError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import type { SecurityEvent } from '../../agent/audit/events.ts';
import { DEFAULT_CLOUD_IDENTITY, TOPIC_ROOT } from './broker-aedes.ts';
import { silentCameras } from './liveness.ts';
import type { ToolCode } from '../dev-codes.ts';

export interface CloudClientOptions {
  /** One broker URL, or every node of a cluster (failover in turn, from a random one). */
  url: string | readonly string[];
  /** The cloud's client key/cert (issued by the device CA) and the broker's CA. */
  key: string;
  cert: string;
  ca: string;
  clientId?: string;
  /** 4 for aedes (3.1.1 only), 5 for mosquitto. */
  protocolVersion?: 4 | 5;
  logger?: Logger;
  /** Security events kept per process for the page. */
  keepEvents?: number;
  /**
   * Keep the session (clean = false): on RabbitMQ its queue is a quorum queue, so the subscription
   * and what was published meanwhile survive the loss of the node the client was on.
   */
  persistentSession?: boolean;
  /** Reconnect pace (defaults: a few seconds; one client on a LAN, not a fleet). */
  backoff?: Partial<BackoffOptions>;
  random?: Random;
  /**
   * A camera not heard from (state, telemetry, events, replies) for this long is shown offline,
   * since a last will does not always come (RabbitMQ loses it with the broker node). Default 3 ×
   * the agent's default telemetry interval (60 s); 0: off.
   */
  staleAfterMs?: number;
}

/** One client, near its broker: a short pace, still jittered and moving on to the next node. */
const CLOUD_BACKOFF: BackoffOptions = {
  baseMs: 250,
  capMs: 4000,
  resetAfterMs: 30_000,
  initialDelayMaxMs: 0,
  longOutageMs: 3_600_000,
  dropDelayMaxMs: 1000,
  authRetryMs: 30_000,
  followServerReference: false,
};

export interface CameraState {
  serial: string;
  online: boolean;
  /** Everything else the camera put in its retained state (gate URL, versions...). */
  state: Record<string, unknown>;
  stateAt?: string;
  telemetry?: Record<string, unknown>;
  telemetryAt?: string;
  /** When the cloud last heard anything from it (ms since the epoch). */
  lastHeardMs?: number;
  /** Set when the cloud marked it offline for silence (no will arrived). */
  silent?: boolean;
}

export interface CommandReply {
  id: string;
  status: 'ok' | 'error';
  data?: unknown;
  error?: { code: string; message: string };
}

export interface ReceivedEvent {
  /** When the cloud received it (ISO). */
  receivedAt: string;
  serial: string;
  event: SecurityEvent;
}

export interface CloudClient extends EventEmitter {
  cameras(): CameraState[];
  camera(serial: string): CameraState | undefined;
  events(): ReceivedEvent[];
  /** Publishes `cmd/<op>` with `{id, ...payload}` and resolves with the camera's reply. */
  command(
    serial: string,
    op: string,
    payload: Record<string, unknown>,
    timeoutMs?: number,
  ): Promise<CommandReply>;
  /** Resolves once `serial` has said it is online (retained state). */
  waitOnline(serial: string, timeoutMs: number): Promise<void>;
  /** The broker URL of the current (or last) connection, and how many times it connected. */
  link(): { url: string; connects: number; online: boolean };
  close(): Promise<void>;
}

const SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

export async function connectCloudClient(opts: CloudClientOptions): Promise<CloudClient> {
  const log = opts.logger ?? silentLogger();
  const keep = opts.keepEvents ?? 200;
  const cams = new Map<string, CameraState>();
  const events: ReceivedEvent[] = [];
  const pending = new Map<string, { resolve: (r: CommandReply) => void; timer: NodeJS.Timeout }>();
  const emitter = new EventEmitter();
  emitter.setMaxListeners(100);

  const random = opts.random ?? systemRandom;
  const list = typeof opts.url === 'string' ? [opts.url] : [...opts.url];
  if (list.length === 0)
    throw new LenscapError<ToolCode>('ERR_CLOUD_CONNECT', 'dev cloud client: no broker URL');
  // Start at a random node (as cameras do), then mqtt.js takes the next server on every attempt.
  const first = Math.floor(random() * list.length) % list.length;
  const ordered = [...list.slice(first), ...list.slice(0, first)];
  const servers = ordered.map((u) => {
    const url = new URL(u);
    return {
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 8883),
      protocol: 'mqtts' as const,
    };
  });
  const protocolVersion = opts.protocolVersion ?? 4;
  const backoff = new Backoff({ ...CLOUD_BACKOFF, ...opts.backoff }, systemClock, random);
  const client: MqttClient = mqtt.connect({
    servers,
    host: servers[0]!.host,
    port: servers[0]!.port,
    protocol: 'mqtts',
    key: opts.key,
    cert: opts.cert,
    ca: opts.ca,
    clientId: opts.clientId ?? `${DEFAULT_CLOUD_IDENTITY}-${randomUUID().slice(0, 8)}`,
    protocolVersion,
    // The pace is ours (below): mqtt.js only moves to the next server when we call reconnect().
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clean: opts.persistentSession !== true,
  });
  let connects = 0;
  let attempts = 1;
  let currentUrl = ordered[0]!;
  let closing = false;
  let retry: NodeJS.Timeout | undefined;
  let lastError: (Error & { code?: unknown }) | undefined;
  let failedBeforeFirst = 0;
  let giveUp: ((err: Error) => void) | undefined;

  const cam = (serial: string): CameraState => {
    let c = cams.get(serial);
    if (!c) {
      c = { serial, online: false, state: {} };
      cams.set(serial, c);
    }
    return c;
  };

  client.on('message', (topic, payload) => {
    const parts = topic.split('/');
    const serial = parts[2];
    if (parts[0] !== 'lenscap' || parts[1] !== 'v1' || !serial || !SERIAL_RE.test(serial)) return;
    const kind = parts.slice(3).join('/');
    const body = parseJson(payload);
    const now = new Date().toISOString();
    // Whatever the camera says counts as a sign of life (liveness.ts decides when silence is offline).
    const heard = () => {
      const c = cams.get(serial);
      if (c) c.lastHeardMs = Date.now();
    };
    if (kind === 'state') {
      const c = cam(serial);
      const obj = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
      c.online = obj.online === true;
      c.state = obj;
      c.stateAt = now;
      c.lastHeardMs = Date.now();
      c.silent = false;
      emitter.emit('state', c);
    } else if (kind === 'telemetry') {
      if (!body || typeof body !== 'object') return;
      const c = cam(serial);
      c.telemetry = body as Record<string, unknown>;
      c.telemetryAt = now;
      heard();
      if (c.silent) {
        // Marked offline for silence, yet it speaks: it was only late.
        c.silent = false;
        c.online = true;
        emitter.emit('state', c);
      }
      emitter.emit('telemetry', { serial, at: now, telemetry: c.telemetry });
    } else if (kind === 'events') {
      if (!body || typeof body !== 'object') return;
      // The topic, not the payload, says which camera spoke: the broker's ACL vouches for it.
      const ev: ReceivedEvent = { receivedAt: now, serial, event: body as SecurityEvent };
      heard();
      events.push(ev);
      if (events.length > keep) events.splice(0, events.length - keep);
      log.info(
        { serial, type: ev.event.type, reason: ev.event.reason, claimedAud: ev.event.claimedAud },
        'security event',
      );
      emitter.emit('event', ev);
    } else if (kind === 'motion' || kind.startsWith('req/')) {
      // Artifact metadata and camera-initiated requests: handled by scripts/dev-cloud/uploads.ts.
      if (!body || typeof body !== 'object' || Array.isArray(body)) return;
      if (kind === 'motion') emitter.emit('motion', { serial, body });
      else emitter.emit('request', { serial, op: kind.slice(4).split('/').join('.'), body });
    } else if (kind.startsWith('reply/')) {
      const r = body as CommandReply | undefined;
      if (!r || typeof r.id !== 'string') return;
      heard();
      const p = pending.get(r.id);
      if (!p) return;
      pending.delete(r.id);
      clearTimeout(p.timer);
      p.resolve(r);
    }
  });
  client.on('error', (err) => {
    lastError = err;
    log.warn({ err: err.message }, 'cloud client: link error');
  });
  // Every topic the cloud follows. With reconnectPeriod 0 mqtt.js keeps no list to resubscribe, so a
  // reconnect without a stored session (broker restarted, clean session) subscribes again here.
  const subscriptions = [
    `${TOPIC_ROOT}/+/state`,
    `${TOPIC_ROOT}/+/telemetry`,
    `${TOPIC_ROOT}/+/events`,
    // `#`: RabbitMQ routes `reply/claim.nonce` as `reply.claim.nonce` (a "." splits levels there)
    // and delivers it as `reply/claim/nonce`, which `reply/+` would never match. Matched by id.
    `${TOPIC_ROOT}/+/reply/#`,
    `${TOPIC_ROOT}/+/motion`,
    `${TOPIC_ROOT}/+/req/#`,
  ];
  client.on('connect', (connack: { sessionPresent?: boolean }) => {
    connects++;
    if (connects > 1 && !connack?.sessionPresent)
      client.subscribe(subscriptions, { qos: 1 }, (err) => {
        if (err) log.warn({ err: err.message }, 'cloud client: resubscribe failed');
      });
    // mqtt.js builds one stream per attempt, each on the next of `servers`.
    currentUrl = ordered[(attempts - 1) % ordered.length]!;
    backoff.connected();
    lastError = undefined;
    if (connects > 1) log.info({ url: currentUrl, connects }, 'cloud client: reconnected');
  });
  client.on('close', () => {
    if (closing) return;
    const err = lastError;
    lastError = undefined;
    if (connects === 0 && ++failedBeforeFirst >= servers.length) {
      // Every node refused the very first connection: nothing to fail over to yet.
      giveUp?.(err ?? new Error('connection closed'));
      return;
    }
    const code = typeof err?.code === 'number' ? err.code : undefined;
    const outcome: Outcome =
      code !== undefined
        ? { kind: 'connack', protocolVersion, code }
        : { kind: 'network', ...(err ? { error: err.message } : {}) };
    const d = backoff.next(outcome);
    clearTimeout(retry);
    retry = setTimeout(() => {
      if (closing) return;
      attempts++;
      client.reconnect();
    }, d.delayMs);
  });

  const staleAfterMs = opts.staleAfterMs ?? 180_000;
  const sweep =
    staleAfterMs > 0
      ? setInterval(
          () => {
            for (const serial of silentCameras(cams.values(), Date.now(), staleAfterMs)) {
              const c = cams.get(serial)!;
              c.online = false;
              c.silent = true;
              log.warn({ serial, staleAfterMs }, 'cloud client: camera silent, shown offline (no will came)');
              emitter.emit('state', c);
            }
          },
          Math.max(200, Math.min(5000, Math.floor(staleAfterMs / 4))),
        ).unref()
      : undefined;

  await new Promise<void>((resolve, reject) => {
    giveUp = (err: Error) => {
      clearInterval(sweep);
      closing = true;
      clearTimeout(retry);
      client.end(true);
      reject(
        new LenscapError<ToolCode>(
          'ERR_CLOUD_CONNECT',
          `dev cloud client could not connect to ${list.join(', ')}: ${err.message}`,
        ),
      );
    };
    client.once('connect', () => {
      giveUp = undefined;
      resolve();
    });
  });
  await client.subscribeAsync(subscriptions, { qos: 1 });

  return Object.assign(emitter, {
    cameras: () => [...cams.values()],
    camera: (serial: string) => cams.get(serial),
    events: () => [...events],
    command(
      serial: string,
      op: string,
      payload: Record<string, unknown>,
      timeoutMs = 5000,
    ): Promise<CommandReply> {
      if (!SERIAL_RE.test(serial) || !/^[a-z][a-z.]{0,31}$/.test(op)) {
        return Promise.reject(
          new LenscapError<ToolCode>('ERR_CLOUD_COMMAND', `bad serial or op: ${serial} ${op}`),
        );
      }
      const id = randomUUID();
      return new Promise<CommandReply>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(
            new LenscapError<ToolCode>(
              'ERR_CLOUD_COMMAND_TIMEOUT',
              `${serial} did not answer ${op} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        pending.set(id, { resolve, timer });
        client.publish(
          `${TOPIC_ROOT}/${serial}/cmd/${op}`,
          JSON.stringify({ ...payload, id }),
          { qos: 1 },
          (err) => {
            if (!err) return;
            clearTimeout(timer);
            pending.delete(id);
            reject(
              new LenscapError<ToolCode>(
                'ERR_CLOUD_COMMAND',
                `publish ${op} to ${serial} failed: ${err.message}`,
              ),
            );
          },
        );
      });
    },
    waitOnline(serial: string, timeoutMs: number): Promise<void> {
      if (cams.get(serial)?.online) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onState = (c: CameraState) => {
          if (c.serial !== serial || !c.online) return;
          clearTimeout(timer);
          emitter.off('state', onState);
          resolve();
        };
        const timer = setTimeout(() => {
          emitter.off('state', onState);
          reject(
            new LenscapError<ToolCode>(
              'ERR_CAMERA_OFFLINE',
              `${serial} did not come online within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        emitter.on('state', onState);
      });
    },
    link: () => ({ url: currentUrl, connects, online: client.connected }),
    async close() {
      closing = true;
      clearInterval(sweep);
      clearTimeout(retry);
      for (const [, p] of pending) clearTimeout(p.timer);
      pending.clear();
      await new Promise<void>((r) => client.end(false, {}, () => r()));
    },
  }) as CloudClient;
}
