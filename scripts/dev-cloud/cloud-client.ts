/**
 * The dev cloud's own MQTT client (certificate CN `lenscap-cloud`): follows every camera's retained
 * `state`, its `telemetry` and its security `events`, and sends commands (`cmd/<op>`) awaiting the
 * matching `reply/<op>` by id. What the page shows comes from here, i.e. from what cameras said.
 * Must never put a whole grant or binding record in a log line.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { LenscapError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import type { SecurityEvent } from '../../agent/audit/events.ts';
import { DEFAULT_CLOUD_IDENTITY, TOPIC_ROOT } from './broker-aedes.ts';
import type { ToolCode } from '../dev-codes.ts';

export interface CloudClientOptions {
  url: string;
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
}

export interface CameraState {
  serial: string;
  online: boolean;
  /** Everything else the camera put in its retained state (gate URL, versions...). */
  state: Record<string, unknown>;
  stateAt?: string;
  telemetry?: Record<string, unknown>;
  telemetryAt?: string;
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

  const client: MqttClient = mqtt.connect(opts.url, {
    key: opts.key,
    cert: opts.cert,
    ca: opts.ca,
    clientId: opts.clientId ?? `${DEFAULT_CLOUD_IDENTITY}-${randomUUID().slice(0, 8)}`,
    protocolVersion: opts.protocolVersion ?? 4,
    // One long-lived client on loopback: a fixed short retry is right here (a fleet is not).
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    clean: true,
  });

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
    if (kind === 'state') {
      const c = cam(serial);
      const obj = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
      c.online = obj.online === true;
      c.state = obj;
      c.stateAt = now;
      emitter.emit('state', c);
    } else if (kind === 'telemetry') {
      if (!body || typeof body !== 'object') return;
      const c = cam(serial);
      c.telemetry = body as Record<string, unknown>;
      c.telemetryAt = now;
      emitter.emit('telemetry', { serial, at: now, telemetry: c.telemetry });
    } else if (kind === 'events') {
      if (!body || typeof body !== 'object') return;
      // The topic, not the payload, says which camera spoke: the broker's ACL vouches for it.
      const ev: ReceivedEvent = { receivedAt: now, serial, event: body as SecurityEvent };
      events.push(ev);
      if (events.length > keep) events.splice(0, events.length - keep);
      log.info(
        { serial, type: ev.event.type, reason: ev.event.reason, claimedAud: ev.event.claimedAud },
        'security event',
      );
      emitter.emit('event', ev);
    } else if (kind.startsWith('reply/')) {
      const r = body as CommandReply | undefined;
      if (!r || typeof r.id !== 'string') return;
      const p = pending.get(r.id);
      if (!p) return;
      pending.delete(r.id);
      clearTimeout(p.timer);
      p.resolve(r);
    }
  });
  client.on('error', (err) => log.warn({ err: err.message }, 'cloud client: link error'));

  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error) => {
      client.end(true);
      reject(
        new LenscapError<ToolCode>(
          'ERR_CLOUD_CONNECT',
          `dev cloud client could not connect to ${opts.url}: ${err.message}`,
        ),
      );
    };
    client.once('error', onErr);
    client.once('connect', () => {
      client.off('error', onErr);
      resolve();
    });
  });
  await client.subscribeAsync(
    [
      `${TOPIC_ROOT}/+/state`,
      `${TOPIC_ROOT}/+/telemetry`,
      `${TOPIC_ROOT}/+/events`,
      `${TOPIC_ROOT}/+/reply/+`,
    ],
    { qos: 1 },
  );

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
    async close() {
      for (const [, p] of pending) clearTimeout(p.timer);
      pending.clear();
      await new Promise<void>((r) => client.end(false, {}, () => r()));
    },
  }) as CloudClient;
}
