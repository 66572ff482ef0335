/**
 * The dev cloud's default MQTT broker: embedded aedes (MQTT 3.1.1 only) behind a TLS server that
 * demands a client certificate from the device CA. A client's identity is its certificate CN, never
 * anything it says in CONNECT; a device may touch only `lenscap/v1/<its CN>/#`, the cloud identity
 * `lenscap/v1/#`. Must never accept a client without a CA-signed certificate, and must never let a
 * device name a topic of another serial (ACL checked on every publish, will and subscribe).
 */
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Aedes, type Client } from 'aedes';
import { LenscapError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import type { ToolCode } from '../dev-codes.ts';

export const TOPIC_ROOT = 'lenscap/v1';
/** CN of the dev cloud's own client certificate (issued by the device CA). */
export const DEFAULT_CLOUD_IDENTITY = 'lenscap-cloud';

export interface BrokerTls {
  /** Broker server key and certificate, PEM. */
  key: string;
  cert: string;
  /** The only trust for client certificates: the device CA, PEM. */
  ca: string;
}

export interface BrokerOptions {
  tls: BrokerTls;
  host?: string;
  /** 0 (default) = any free port. */
  port?: number;
  /** CN allowed to use every camera's topics. */
  cloudIdentity?: string;
  logger?: Logger;
}

export interface RunningBroker {
  kind: 'aedes' | 'mosquitto' | 'rabbitmq';
  /** mqtts://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The broker's own process, when it is one (mosquitto). */
  pid?: number;
  /** Identities (CN) currently connected. */
  connected(): string[];
  close(): Promise<void>;
}

/** A CN usable as a topic level: no wildcards, separators or empties (fails closed). */
export function isSafeIdentity(cn: unknown): cn is string {
  return typeof cn === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(cn);
}

/**
 * Whether `identity` may publish to / subscribe with `topic` (a topic or a filter).
 * A device: only filters inside its own prefix, its serial written literally (no wildcard there).
 */
export function topicAllowed(
  identity: string,
  topic: string,
  cloudIdentity = DEFAULT_CLOUD_IDENTITY,
): boolean {
  if (!isSafeIdentity(identity)) return false;
  if (topic.includes('\u0000')) return false;
  const own = identity === cloudIdentity ? `${TOPIC_ROOT}/` : `${TOPIC_ROOT}/${identity}/`;
  if (identity === cloudIdentity && topic === `${TOPIC_ROOT}/#`) return true;
  if (!topic.startsWith(own)) return false;
  return topic.length > own.length;
}

function peerIdentity(client: Client): string | undefined {
  const sock = client.conn as tls.TLSSocket;
  if (typeof sock.getPeerCertificate !== 'function' || !sock.authorized) return undefined;
  const cn = sock.getPeerCertificate()?.subject?.CN;
  return isSafeIdentity(cn) ? cn : undefined;
}

export async function startAedesBroker(opts: BrokerOptions): Promise<RunningBroker> {
  const log = opts.logger ?? silentLogger();
  const cloudIdentity = opts.cloudIdentity ?? DEFAULT_CLOUD_IDENTITY;
  const identities = new WeakMap<Client, string>();
  const online = new Map<string, number>();

  const broker = await Aedes.createBroker({
    // Client id must equal the certificate CN (the cloud may add a suffix): otherwise a device could
    // take over another's session, since a broker drops the older client with the same id.
    authenticate(client, _username, _password, done) {
      const cn = peerIdentity(client);
      const idOk =
        cn !== undefined &&
        (client.id === cn || (cn === cloudIdentity && client.id.startsWith(`${cloudIdentity}-`)));
      if (!cn || !idOk) {
        log.warn({ clientId: client.id, cn }, 'broker: connection refused (identity)');
        const err = Object.assign(new Error('not authorized'), { returnCode: 5 as const });
        return done(err, false);
      }
      identities.set(client, cn);
      done(null, true);
    },
    authorizePublish(client, packet, done) {
      const cn = client ? identities.get(client) : undefined;
      if (!cn || !topicAllowed(cn, packet.topic, cloudIdentity)) {
        log.warn({ cn, topic: packet.topic }, 'broker: publish refused (ACL)');
        return done(new LenscapError<ToolCode>('ERR_BROKER_ACL', `publish to ${packet.topic} not allowed`));
      }
      done(null);
    },
    authorizeSubscribe(client, sub, done) {
      const cn = identities.get(client);
      if (!cn || !topicAllowed(cn, sub.topic, cloudIdentity)) {
        log.warn({ cn, topic: sub.topic }, 'broker: subscribe refused (ACL)');
        // null = SUBACK 0x80 for that filter: the client sees the refusal, the connection stays.
        return done(null, null);
      }
      done(null, sub);
    },
  });
  broker.on('clientReady', (c) => {
    const cn = identities.get(c);
    if (cn) online.set(cn, (online.get(cn) ?? 0) + 1);
  });
  broker.on('clientDisconnect', (c) => {
    const cn = identities.get(c);
    if (!cn) return;
    const n = (online.get(cn) ?? 1) - 1;
    if (n <= 0) online.delete(cn);
    else online.set(cn, n);
  });

  const server = tls.createServer(
    {
      key: opts.tls.key,
      cert: opts.tls.cert,
      ca: opts.tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    (socket) => broker.handle(socket),
  );
  const sockets = new Set<tls.TLSSocket>();
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'broker: TLS handshake refused'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  log.info({ port }, 'broker (aedes) listening');

  let closed = false;
  return {
    kind: 'aedes',
    url: `mqtts://${host}:${port}`,
    port,
    connected: () => [...online.keys()],
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
