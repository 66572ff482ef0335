/**
 * The cloud side of the fleet benches: one mqtt.js client with the cloud's identity (CN
 * lenscap-cloud, allowed on the whole tree by the ACL) and a PERSISTENT session, so security events
 * published while it reconnects after a broker restart are queued for it by the broker. Records
 * every camera's retained state and every security event with its arrival time, and sends commands
 * to any camera's `cmd/<op>` topic (which is what makes a misroute possible at all).
 * Must never drop an event it received, and never log a grant.
 */
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type { SecurityEvent } from '../../agent/audit/events.ts';

export interface CloudEvent {
  serial: string;
  /** Date.now() when the cloud received it. */
  at: number;
  event: SecurityEvent;
}

export interface CommandReply {
  id: string;
  status: 'ok' | 'error';
  data?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export interface BenchCloud {
  events: CloudEvent[];
  online(serial: string): boolean;
  /** Called with (serial, Date.now()) on every live `{"online":true}` state. */
  onOnline(fn: (serial: string, at: number) => void): () => void;
  /** Forgets who is online (the cloud saw its broker go down). */
  resetOnline(): void;
  onlineCount(): number;
  waitOnline(serial: string, timeoutMs: number): Promise<boolean>;
  /** Publishes `cmd/<op>`; resolves with the reply or undefined after timeoutMs. */
  command(
    serial: string,
    op: string,
    payload: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<CommandReply | undefined>;
  close(): Promise<void>;
}

export async function connectBenchCloud(opts: {
  url: string;
  key: string;
  cert: string;
  ca: string;
  /** Fixed reconnect period (default 250 ms); a test makes the cloud come back late with it. */
  reconnectPeriodMs?: number;
}): Promise<BenchCloud> {
  const states = new Map<string, boolean>();
  const events: CloudEvent[] = [];
  const pending = new Map<string, (r: CommandReply) => void>();
  const stateWaiters = new Set<() => void>();
  const onlineListeners = new Set<(serial: string, at: number) => void>();
  const client: MqttClient = mqtt.connect(opts.url, {
    key: opts.key,
    cert: opts.cert,
    ca: opts.ca,
    // mosquitto replaces it with the certificate CN (use_username_as_clientid); said here for aedes.
    clientId: 'lenscap-cloud',
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    // One client on loopback, and the cloud wants to be back before the fleet: a short fixed retry.
    reconnectPeriod: opts.reconnectPeriodMs ?? 250,
    connectTimeout: 5000,
  });
  client.on('error', () => undefined);
  client.on('message', (topic, payload, packet) => {
    const parts = topic.split('/');
    const serial = parts[2];
    if (!serial) return;
    const kind = parts.slice(3).join('/');
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (kind === 'state') {
      // Retained states may be stale (a broker restart keeps them, wills do not fire): only a live
      // state message says a camera is online now.
      if (packet.retain) return;
      const on = (body as { online?: boolean })?.online === true;
      states.set(serial, on);
      if (on) for (const f of onlineListeners) f(serial, Date.now());
      for (const w of stateWaiters) w();
    } else if (kind === 'events') {
      events.push({ serial, at: Date.now(), event: body as SecurityEvent });
    } else if (kind.startsWith('reply/')) {
      const r = body as CommandReply;
      const p = r && typeof r.id === 'string' ? pending.get(r.id) : undefined;
      if (p) {
        pending.delete(r.id);
        p(r);
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(['lenscap/v1/+/state', 'lenscap/v1/+/events', 'lenscap/v1/+/reply/+'], {
    qos: 1,
  });
  return {
    events,
    online: (s) => states.get(s) === true,
    resetOnline: () => states.clear(),
    onOnline(fn) {
      onlineListeners.add(fn);
      return () => onlineListeners.delete(fn);
    },
    onlineCount: () => [...states.values()].filter(Boolean).length,
    waitOnline(serial, timeoutMs) {
      if (states.get(serial)) return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (v: boolean) => {
          stateWaiters.delete(check);
          clearTimeout(t);
          resolve(v);
        };
        const check = () => states.get(serial) && done(true);
        const t = setTimeout(() => done(false), timeoutMs);
        stateWaiters.add(check);
      });
    },
    command(serial, op, payload, timeoutMs) {
      const id = randomUUID();
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          pending.delete(id);
          resolve(undefined);
        }, timeoutMs);
        pending.set(id, (r) => {
          clearTimeout(t);
          resolve(r);
        });
        client.publish(
          `lenscap/v1/${serial}/cmd/${op}`,
          JSON.stringify({ ...payload, id }),
          { qos: 1 },
          () => undefined,
        );
      });
    },
    async close() {
      // Ends the persistent session too, so a later run starts clean.
      await client.endAsync(false, { properties: { sessionExpiryInterval: 0 } }).catch(() => undefined);
    },
  };
}
