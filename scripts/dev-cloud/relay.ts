/**
 * The dev cloud's relay for push mode: a second node-media-server (not the camera's hub) that
 * cameras behind NAT push RTMP to, at the URL carried inside a signed relay grant. Tamed: loopback
 * only, ports chosen by us (NMS treats port 0 as "off" and exits the process on a busy port), its
 * logger held at warn, no web admin, its store under the dev cloud's dir. Must never listen on
 * anything but the given host, and accepts publishers only on /live/<serial>.
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LenscapError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import { isSafeIdentity } from './broker-aedes.ts';
import { freePort } from './broker-mosquitto.ts';
import type { ToolCode } from '../dev-codes.ts';

const require = createRequire(import.meta.url);

interface NmsSession {
  id: string;
  streamPath?: string;
  ip?: string;
  close?: () => void;
}
interface NmsListener {
  handleListenError: (name: string, port: number) => (err: Error) => void;
  tcpServer?: import('node:net').Server;
  httpServer?: import('node:net').Server;
}
interface Nms {
  rtmpServer?: NmsListener;
  httpServer?: NmsListener;
  on(event: string, fn: (s: NmsSession) => void): void;
  run(): Promise<void>;
  stop(): Promise<void>;
}

export interface RelayOptions {
  /** Holds the NMS store (it insists on one). */
  dir: string;
  host?: string;
  logger?: Logger;
}

export interface RunningRelay {
  /** rtmp://127.0.0.1:<port>/live — a push URL is `${rtmpBase}/<serial>`. */
  rtmpBase: string;
  /** http://127.0.0.1:<port> — HTTP-FLV of pushed streams at /live/<serial>.flv (loopback only). */
  httpBase: string;
  pushUrl(serial: string): string;
  /** Serials currently pushing. */
  active(): string[];
  close(): Promise<void>;
}

let running = false;

export async function startRelay(opts: RelayOptions): Promise<RunningRelay> {
  // NMS keeps its config and sessions in a module-level singleton: one instance per process.
  if (running)
    throw new LenscapError<ToolCode>('ERR_RELAY_RUNNING', 'a relay is already running in this process');
  const log = opts.logger ?? silentLogger();
  const host = opts.host ?? '127.0.0.1';
  const [rtmpPort, httpPort] = [await freePort(host), await freePort(host)];
  const storeDir = join(opts.dir, 'relay-store');
  mkdirSync(storeDir, { recursive: true, mode: 0o700 });

  const NodeMediaServer = require('node-media-server') as new (config: object) => Nms;
  const nmsLogger = require('node-media-server/src/core/logger.js') as { level: string };
  // Its constructor forces the level to debug; pin it at warn so our logs stay readable.
  Object.defineProperty(nmsLogger, 'level', { get: () => 'warn', set: () => undefined, configurable: true });
  const nms = new NodeMediaServer({
    bind: host,
    rtmp: { port: rtmpPort, chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 },
    http: { port: httpPort, allow_origin: '*' },
    webadmin: { enable: false },
    store: { path: storeDir },
  });
  running = true;

  const pushing = new Map<string, string>();
  nms.on('prePublish', (s) => {
    const m = /^\/live\/([^/]+)$/.exec(s.streamPath ?? '');
    if (!m || !isSafeIdentity(m[1])) {
      log.warn({ path: s.streamPath, ip: s.ip }, 'relay: publish refused (path)');
      s.close?.();
    }
  });
  nms.on('postPublish', (s) => {
    const serial = /^\/live\/([^/]+)$/.exec(s.streamPath ?? '')?.[1];
    if (serial) {
      pushing.set(s.id, serial);
      log.info({ serial }, 'relay: push started');
    }
  });
  nms.on('donePublish', (s) => {
    const serial = pushing.get(s.id);
    if (serial) log.info({ serial }, 'relay: push ended');
    pushing.delete(s.id);
  });
  // NMS exits the process when a port is taken: make that an error of ours, and wait until both
  // listeners are bound before handing out URLs.
  const bound = [nms.rtmpServer, nms.httpServer].map(
    (srv) =>
      new Promise<void>((resolve, reject) => {
        if (!srv)
          return reject(
            new LenscapError<ToolCode>('ERR_RELAY_LISTEN', 'node-media-server has no such listener'),
          );
        srv.handleListenError = (name: string, port: number) => (err: Error) =>
          reject(
            new LenscapError<ToolCode>(
              'ERR_RELAY_LISTEN',
              `relay ${name} on ${host}:${port}: ${err.message}`,
            ),
          );
        const server = srv.tcpServer ?? srv.httpServer;
        if (!server)
          return reject(new LenscapError<ToolCode>('ERR_RELAY_LISTEN', 'node-media-server listener missing'));
        server.once('listening', () => resolve());
      }),
  );
  await nms.run();
  try {
    await Promise.all(bound);
  } catch (err) {
    await nms.stop();
    running = false;
    throw err;
  }

  let closed = false;
  return {
    rtmpBase: `rtmp://${host}:${rtmpPort}/live`,
    httpBase: `http://${host}:${httpPort}`,
    pushUrl: (serial) => `rtmp://${host}:${rtmpPort}/live/${serial}`,
    active: () => [...new Set(pushing.values())],
    async close() {
      if (closed) return;
      closed = true;
      await nms.stop();
      running = false;
    },
  };
}
