/**
 * A RabbitMQ cluster of N nodes (3 by default) on one machine, for the dev cloud (`npm start --
 * --broker rabbitmq`), the failover tests and the storm bench: Debian's rabbitmq-server 3.10, the MQTT
 * plugin on a TLS listener per node with peer verification, certificate login with the CN as user
 * name, quorum session queues, `guest` deleted and no password on any user. Each serial may use only
 * `lenscap/v1/<serial>/#` and its own session queue (literal per-user rules written in one definitions
 * import, never one rabbitmqctl call per serial); the cloud identity may use the whole tree.
 * Everything (cookie, Mnesia, logs, its own epmd on a free port) lives under `dir` and is stopped by
 * close(). Must never listen beyond loopback, never leave a password or `guest` that would let a
 * client bypass its certificate, and never stop an epmd or node it did not start.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { LenscapError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import {
  DEFAULT_CLOUD_IDENTITY,
  isSafeIdentity,
  type BrokerTls,
  type RunningBroker,
} from './broker-aedes.ts';
import { freePort } from './broker-mosquitto.ts';
import type { ToolCode } from '../dev-codes.ts';

const SBIN = '/usr/lib/rabbitmq/bin';

export interface RabbitClusterOptions {
  /** Where config, cookie, Mnesia and logs go (0700); removed by nobody but the caller. */
  dir: string;
  tls: BrokerTls;
  nodes?: number;
  /** Serials allowed at start (more later with addDevices). */
  devices?: readonly string[];
  cloudIdentity?: string;
  logger?: Logger;
  /** Give up on a node that is not ready after this long. */
  startTimeoutMs?: number;
}

export interface RabbitNode {
  name: string;
  /** MQTT over TLS port on 127.0.0.1. */
  port: number;
  url: string;
  /** Pid of the Erlang VM (from its pid file), while it runs. */
  pid(): number | undefined;
  alive(): boolean;
}

export interface RabbitCluster extends RunningBroker {
  kind: 'rabbitmq';
  /** One mqtts:// URL per node (what cloud.url lists). */
  urls: string[];
  nodes: RabbitNode[];
  /** Users and permissions for these serials, in one definitions import. */
  addDevices(serials: readonly string[]): Promise<void>;
  /** SIGKILL one node's VM (a crash, not a shutdown). */
  killNode(i: number): Promise<void>;
  /** Starts a killed node again (it rejoins the cluster from its own Mnesia). */
  restartNode(i: number): Promise<void>;
  /** `rabbitmqctl` against node i; resolves with stdout. */
  ctl(i: number, args: readonly string[], timeoutMs?: number): Promise<string>;
}

/** True when this machine has the RabbitMQ server scripts (Debian's rabbitmq-server). */
export function rabbitmqInstalled(): boolean {
  try {
    accessSync(join(SBIN, 'rabbitmq-server'), constants.X_OK);
    accessSync(join(SBIN, 'rabbitmqctl'), constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The definitions for a batch of serials: a user without password (certificate login only), its
 * own session queue (configure/write/read, literal: `{username}` is not expanded in vhost rules),
 * and its topic prefix on amq.topic. One import for the whole batch.
 */
export function deviceDefinitions(serials: readonly string[]): Record<string, unknown> {
  for (const s of serials) {
    if (!isSafeIdentity(s) || s.length > 64)
      throw new LenscapError<ToolCode>(
        'ERR_BROKER_SERIAL',
        `not a serial usable as a broker user: ${JSON.stringify(s)}`,
      );
    // RabbitMQ 3.10 turns MQTT `/` into `.` and keeps `.` (rabbit_mqtt_util:to_amqp): serial `A.B`
    // would be routed as two levels, under the prefix `lenscap.v1.A.` that confines serial `A`.
    if (s.includes('.'))
      throw new LenscapError<ToolCode>(
        'ERR_BROKER_SERIAL',
        `serial ${JSON.stringify(s)} contains "." which RabbitMQ routes as a level separator: its topics would fall under another serial's rule`,
      );
  }
  return {
    users: serials.map((name) => ({
      name,
      // An empty hash: no password can ever match (certificate login is the only way in).
      password_hash: '',
      hashing_algorithm: 'rabbit_password_hashing_sha256',
      tags: [],
      limits: {},
    })),
    vhosts: [{ name: '/' }],
    permissions: serials.map((user) => {
      const q = `mqtt-subscription-${escapeRegex(user)}qos[01]`;
      return {
        user,
        vhost: '/',
        configure: `^${q}$`,
        write: `^(amq\\.topic|${q})$`,
        read: `^(amq\\.topic|${q})$`,
      };
    }),
    topic_permissions: serials.map((user) => {
      const prefix = `^lenscap\\.v1\\.${escapeRegex(user)}\\.`;
      return { user, vhost: '/', exchange: 'amq.topic', write: prefix, read: prefix };
    }),
  };
}

/** The cloud identity: the whole lenscap tree, its own (quorum, surviving) session queues. */
export function cloudDefinitions(identity: string): Record<string, unknown> {
  const q = `mqtt-subscription-${escapeRegex(identity)}[A-Za-z0-9_-]*qos[01]`;
  return {
    users: [
      {
        name: identity,
        password_hash: '',
        hashing_algorithm: 'rabbit_password_hashing_sha256',
        tags: [],
        limits: {},
      },
    ],
    vhosts: [{ name: '/' }],
    permissions: [
      {
        user: identity,
        vhost: '/',
        configure: `^${q}$`,
        write: `^(amq\\.topic|${q})$`,
        read: `^(amq\\.topic|${q})$`,
      },
    ],
    topic_permissions: [
      {
        user: identity,
        vhost: '/',
        exchange: 'amq.topic',
        write: '^lenscap\\.v1\\.',
        read: '^lenscap\\.v1\\.',
      },
    ],
  };
}

export function rabbitConf(dir: string, port: number): string {
  return [
    '# Generated by the lenscap dev cloud at run time; edits are overwritten.',
    'listeners.tcp = none',
    'mqtt.listeners.tcp = none',
    `mqtt.listeners.ssl.default = 127.0.0.1:${port}`,
    'mqtt.allow_anonymous = false',
    'mqtt.ssl_cert_login = true',
    'ssl_cert_login_from = common_name',
    'mqtt.vhost = /',
    'mqtt.exchange = amq.topic',
    // Only quorum session queues survive the loss of their node (classic ones strand the session).
    'mqtt.durable_queue_type = quorum',
    `ssl_options.cacertfile = ${join(dir, 'device-ca.pem')}`,
    `ssl_options.certfile = ${join(dir, 'broker.crt')}`,
    `ssl_options.keyfile = ${join(dir, 'broker.key')}`,
    'ssl_options.verify = verify_peer',
    'ssl_options.fail_if_no_peer_cert = true',
    'ssl_options.versions.1 = tlsv1.3',
    'ssl_options.versions.2 = tlsv1.2',
    'log.console = false',
    'log.file.level = warning',
    '',
  ].join('\n');
}

interface NodeProc {
  name: string;
  port: number;
  distPort: number;
  env: NodeJS.ProcessEnv;
  child?: ChildProcess;
  exited?: Promise<void>;
}

/** The first port of the kernel's ephemeral range (connect() and bind(0) take ports from it). */
export function ephemeralLow(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): number {
  try {
    const low = Number(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * A free loopback port below the ephemeral range, for a listener that closes and binds again while
 * the node runs; falls back to an ephemeral one when 50 random tries find none free.
 */
export async function listenerPort(): Promise<number> {
  const top = Math.min(ephemeralLow(), 32768) - 1;
  const bottom = Math.max(1025, top - 12_000);
  for (let i = 0; i < 50; i++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  return freePort();
}

export async function startRabbitCluster(opts: RabbitClusterOptions): Promise<RabbitCluster> {
  const log = (opts.logger ?? silentLogger()).child({ component: 'rabbitmq' });
  if (!rabbitmqInstalled())
    throw new LenscapError<ToolCode>(
      'ERR_BROKER_MISSING',
      'rabbitmq-server is not installed (apt-get install rabbitmq-server), or use --broker aedes',
    );
  const n = opts.nodes ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 7)
    throw new LenscapError<ToolCode>('ERR_BROKER_NODES', `a cluster of 1..7 nodes, not ${n}`);
  const cloudIdentity = opts.cloudIdentity ?? DEFAULT_CLOUD_IDENTITY;
  const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  const dir = opts.dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'device-ca.pem'), opts.tls.ca, { mode: 0o600 });
  writeFileSync(join(dir, 'broker.crt'), opts.tls.cert, { mode: 0o600 });
  writeFileSync(join(dir, 'broker.key'), opts.tls.key, { mode: 0o600 });
  // Our own cookie and our own epmd port: nothing shared with a system instance or another cluster.
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const cookie = join(home, '.erlang.cookie');
  if (!existsSync(cookie))
    writeFileSync(cookie, randomBytes(20).toString('hex').toUpperCase(), { mode: 0o600 });
  const epmdPort = await freePort();
  const tag = randomBytes(3).toString('hex');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '', { mode: 0o600 });
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_mqtt].\n', { mode: 0o600 });
  const baseEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
  };

  const nodes: NodeProc[] = [];
  for (let i = 1; i <= n; i++) {
    // MQTT and AMQP listeners close at stop_app and bind again at start_app (join_cluster between):
    // a port from the kernel's ephemeral range can be taken meanwhile by any outgoing connection's
    // source port (seen once: eaddrinuse at start_app), one below it only by an explicit bind.
    const name = `lenscap${tag}n${i}@localhost`;
    const ndir = join(dir, `node${i}`);
    mkdirSync(ndir, { recursive: true, mode: 0o700 });
    const port = await listenerPort();
    const distPort = await freePort();
    writeFileSync(join(ndir, 'rabbitmq.conf'), rabbitConf(dir, port), { mode: 0o600 });
    nodes.push({
      name,
      port,
      distPort,
      env: {
        ...baseEnv,
        RABBITMQ_NODENAME: name,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(await listenerPort()),
        RABBITMQ_DIST_PORT: String(distPort),
        RABBITMQ_CONFIG_FILE: join(ndir, 'rabbitmq.conf'),
        RABBITMQ_MNESIA_BASE: join(ndir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(ndir, 'log'),
        RABBITMQ_PID_FILE: join(ndir, 'rabbit.pid'),
        // Two shared cores: no busy-waiting schedulers.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+sbwt none +sbwtdcpu none +sbwtdio none',
      },
    });
  }

  const ctlAt = (node: NodeProc, args: readonly string[], timeoutMs = 60_000) =>
    new Promise<string>((resolve, reject) => {
      execFile(
        join(SBIN, 'rabbitmqctl'),
        ['-n', node.name, ...args],
        { env: baseEnv, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err)
            reject(
              new LenscapError<ToolCode>(
                'ERR_BROKER_CTL',
                `rabbitmqctl ${args[0]} on ${node.name} failed: ${(stderr || err.message).trim().split('\n').slice(-3).join(' | ')}`,
              ),
            );
          else resolve(stdout);
        },
      );
    });

  const pidOf = (node: NodeProc): number | undefined => {
    try {
      const pid = Number(readFileSync(node.env.RABBITMQ_PID_FILE!, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };

  const launch = (node: NodeProc) => {
    // A stale pid file (a killed node) would make `rabbitmqctl wait` watch a dead process.
    rmSync(node.env.RABBITMQ_PID_FILE!, { force: true });
    // Own process group: the wrapper shell and its Erlang VM are stopped (or killed) together.
    const child = spawn(join(SBIN, 'rabbitmq-server'), [], {
      env: node.env,
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    child.stderr?.on('data', (d: Buffer) =>
      log.debug({ node: node.name, out: d.toString().slice(0, 500) }, 'rabbitmq'),
    );
    node.child = child;
    node.exited = new Promise<void>((r) => child.once('exit', () => r()));
  };

  const waitReady = async (node: NodeProc) => {
    const deadline = Date.now() + startTimeoutMs;
    // `rabbitmqctl wait` needs the pid file, which appears a moment after launch.
    while (!existsSync(node.env.RABBITMQ_PID_FILE!)) {
      if (node.child?.exitCode !== null && node.child?.exitCode !== undefined)
        throw new LenscapError<ToolCode>(
          'ERR_BROKER_START',
          `${node.name} exited with code ${node.child.exitCode}`,
        );
      if (Date.now() > deadline)
        throw new LenscapError<ToolCode>('ERR_BROKER_START', `${node.name}: no pid file`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await ctlAt(
      node,
      ['wait', node.env.RABBITMQ_PID_FILE!, '--timeout', String(Math.ceil(startTimeoutMs / 1000))],
      startTimeoutMs + 5000,
    );
  };

  const waitPort = async (port: number, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => (s.destroy(), resolve(false)));
      });
      if (ok) return;
      if (Date.now() > deadline)
        throw new LenscapError<ToolCode>('ERR_BROKER_START', `no MQTT listener on ${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stopNode = async (node: NodeProc, graceMs: number) => {
    const child = node.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    const killer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    await node.exited;
    clearTimeout(killer);
  };

  const importDefinitions = async (defs: Record<string, unknown>, name: string) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(defs), { mode: 0o600 });
    const alive = nodes.find((p) => p.child && p.child.exitCode === null && p.child.signalCode === null);
    if (!alive)
      throw new LenscapError<ToolCode>('ERR_BROKER_CTL', 'no running node to import definitions into');
    await ctlAt(alive, ['import_definitions', file], 120_000);
  };

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(nodes.map((p) => stopNode(p, 15_000)));
    // The epmd our first node started (daemonized, so not in any node's process group): ours alone,
    // on our own port. `epmd -kill` refuses while names are registered; they are gone now.
    await new Promise<void>((resolve) =>
      execFile('epmd', ['-port', String(epmdPort), '-kill'], { env: baseEnv, timeout: 5000 }, () =>
        resolve(),
      ),
    );
    log.info({ nodes: n }, 'rabbitmq cluster stopped');
  };

  try {
    const t0 = Date.now();
    for (const node of nodes) launch(node);
    await Promise.all(nodes.map(waitReady));
    for (const node of nodes.slice(1)) {
      await ctlAt(node, ['stop_app']);
      await ctlAt(node, ['join_cluster', nodes[0]!.name]);
      await ctlAt(node, ['start_app']);
    }
    // guest could log in over a device certificate with a password: it must not exist at all.
    await ctlAt(nodes[0]!, ['delete_user', 'guest']).catch(() => undefined);
    await importDefinitions(
      mergeDefinitions(cloudDefinitions(cloudIdentity), deviceDefinitions(opts.devices ?? [])),
      'definitions-initial',
    );
    await Promise.all(nodes.map((p) => waitPort(p.port, 30_000)));
    log.info({ nodes: n, ms: Date.now() - t0, epmdPort }, 'rabbitmq cluster ready');
  } catch (err) {
    await close();
    throw err;
  }

  const publicNodes: RabbitNode[] = nodes.map((p) => ({
    name: p.name,
    port: p.port,
    url: `mqtts://127.0.0.1:${p.port}`,
    pid: () => pidOf(p),
    alive: () => !!p.child && p.child.exitCode === null && p.child.signalCode === null,
  }));

  let batch = 0;
  return {
    kind: 'rabbitmq',
    url: publicNodes[0]!.url,
    urls: publicNodes.map((p) => p.url),
    port: publicNodes[0]!.port,
    pid: nodes[0]!.child?.pid,
    nodes: publicNodes,
    // RabbitMQ does not tell us cheaply; the cloud client tracks state instead.
    connected: () => [],
    async addDevices(serials) {
      if (serials.length === 0) return;
      await importDefinitions(deviceDefinitions(serials), `definitions-devices-${++batch}`);
      log.info({ count: serials.length }, 'rabbitmq: device users and permissions imported');
    },
    async killNode(i) {
      const node = nodes[i];
      if (!node?.child) throw new LenscapError<ToolCode>('ERR_BROKER_NODES', `no node ${i}`);
      try {
        process.kill(-node.child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      await node.exited;
      log.warn({ node: node.name }, 'rabbitmq node killed');
    },
    async restartNode(i) {
      const node = nodes[i];
      if (!node) throw new LenscapError<ToolCode>('ERR_BROKER_NODES', `no node ${i}`);
      if (publicNodes[i]!.alive()) return;
      launch(node);
      await waitReady(node);
      await waitPort(node.port, 30_000);
    },
    ctl: (i, args, timeoutMs) => ctlAt(nodes[i]!, args, timeoutMs),
    close,
  };
}

function mergeDefinitions(...parts: Array<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown[]> = {
    users: [],
    vhosts: [{ name: '/' }],
    permissions: [],
    topic_permissions: [],
  };
  for (const p of parts)
    for (const k of ['users', 'permissions', 'topic_permissions'] as const)
      out[k]!.push(...((p[k] as unknown[]) ?? []));
  return out;
}
