/**
 * The one mosquitto launcher of tests and benches: 127.0.0.1 on a free (or given) port, mTLS with
 * `require_certificate true` and `use_identity_as_username true` + `use_username_as_clientid true`
 * (the cert CN is the username and the client id, as on the dev cloud's broker), an optional ACL
 * (benches pass the dev cloud's `mosquittoAcl()`), optional persistence (a bench's cloud session and
 * the events queued for it survive a staged outage), and a log file the test can read back (e.g. to
 * see which username connected) unless `log: false` (a storm of connections). stop() and restart()
 * keep the port.
 * Must never listen beyond loopback, and must never outlive the test or bench (call stop()).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForPort } from '../scripts/dev-cloud/broker-mosquitto.ts';
import { programPath } from './requires.ts';
import { waitForOutput } from './wait.ts';

export interface MosquittoTestOptions {
  /** Directory for conf, certs, ACL, log and persistence (the test's temp dir or a subdir). */
  dir: string;
  /** CA that client certificates must chain to (PEM). */
  caPem: string;
  /** Broker server cert + key (PEM) for 127.0.0.1. */
  serverCert: string;
  serverKey: string;
  /** ACL file content; absent: no ACL (every authenticated client may use every topic). */
  acl?: string;
  /**
   * Keep persistent sessions across stop/restart, in `dir`. `true`: saved on SIGTERM only, so a
   * SIGKILL loses them. `'every-change'`: saved after every subscription, retained or queued message
   * (mosquitto's autosave_on_changes), so they survive a SIGKILL as a production broker's durable
   * sessions would. Default false.
   */
  persistence?: boolean | 'every-change';
  /** Write the connection log to `logFile` (default true); false: `log_dest none`. */
  log?: boolean;
  /** Extra mosquitto.conf lines appended to the listener (e.g. 'max_connections -1'). */
  extraConf?: string[];
  /** Fixed port (restart uses the same); default: a free one. */
  port?: number;
}

export interface TestMosquitto {
  url: string;
  port: number;
  logFile: string;
  pid(): number | undefined;
  running(): boolean;
  /** The log so far ('' with `log: false`). */
  log(): string;
  /** Usernames mosquitto reported for new clients ("New client connected ... u'CAM-0001'"). */
  usernames(): string[];
  /** Resolves when the log matches (polls). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM (a clean stop that saves persistent sessions; SIGKILL after 5 s) or SIGKILL (an outage). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Stop (when running) then start again on the same port with the same config. */
  restart(): Promise<void>;
}

/** One free-port helper for the whole repo (the dev cloud's); re-exported for tests. */
export { freePort };

export async function startMosquitto(opts: MosquittoTestOptions): Promise<TestMosquitto> {
  const binary = programPath('mosquitto');
  if (!binary) throw new Error('mosquitto is not installed (apt-get install mosquitto)');
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const port = opts.port ?? (await freePort());
  const logging = opts.log ?? true;
  const f = {
    conf: join(opts.dir, 'mosquitto.conf'),
    ca: join(opts.dir, 'mq-ca.pem'),
    cert: join(opts.dir, 'mq-server.crt'),
    key: join(opts.dir, 'mq-server.key'),
    acl: join(opts.dir, 'mq-acl.conf'),
    log: join(opts.dir, 'mosquitto.log'),
  };
  writeFileSync(f.ca, opts.caPem, { mode: 0o600 });
  writeFileSync(f.cert, opts.serverCert, { mode: 0o600 });
  writeFileSync(f.key, opts.serverKey, { mode: 0o600 });
  if (opts.acl !== undefined) writeFileSync(f.acl, opts.acl, { mode: 0o600 });
  writeFileSync(f.log, '', { mode: 0o600 });
  const conf = [
    // As root, mosquitto would drop to user "mosquitto", which cannot read our 0700 dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'per_listener_settings false',
    ...(opts.persistence
      ? [
          'persistence true',
          `persistence_location ${opts.dir}/`,
          ...(opts.persistence === 'every-change'
            ? ['autosave_on_changes true', 'autosave_interval 1']
            : ['autosave_interval 0']),
        ]
      : ['persistence false']),
    'allow_anonymous false',
    ...(opts.acl !== undefined ? [`acl_file ${f.acl}`] : []),
    ...(logging ? [`log_dest file ${f.log}`, 'log_type all', 'connection_messages true'] : ['log_dest none']),
    `listener ${port} 127.0.0.1`,
    `cafile ${f.ca}`,
    `certfile ${f.cert}`,
    `keyfile ${f.key}`,
    'require_certificate true',
    'use_identity_as_username true',
    'use_username_as_clientid true',
    ...(opts.extraConf ?? []),
  ];
  writeFileSync(f.conf, conf.join('\n') + '\n', { mode: 0o600 });

  let child: ChildProcess | undefined;
  const alive = (c: ChildProcess | undefined): c is ChildProcess =>
    !!c && c.exitCode === null && c.signalCode === null;
  const start = async () => {
    const c = spawn(binary, ['-c', f.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child = c;
    try {
      await waitForPort('127.0.0.1', port, c, 5000);
    } catch (err) {
      c.kill('SIGKILL');
      throw new Error(`${(err as Error).message}: ${stderr.trim()}`, { cause: err });
    }
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    const c = child;
    child = undefined;
    if (!alive(c)) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  await start();
  const log = () => readFileSync(f.log, 'utf8');
  return {
    url: `mqtts://127.0.0.1:${port}`,
    port,
    logFile: f.log,
    pid: () => child?.pid,
    running: () => alive(child),
    log,
    usernames: () =>
      [...log().matchAll(/New client connected from \S+ as \S+ \([^)]*\bu'([^']*)'\)/g)].map((m) => m[1]!),
    async waitForLog(pattern, timeoutMs = 5000) {
      return (
        await waitForOutput(log, pattern, timeoutMs, `mosquitto log to match ${pattern}`, { stepMs: 40 })
      )[0];
    },
    stop,
    async restart() {
      await stop();
      await start();
    },
  };
}
