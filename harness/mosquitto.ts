/**
 * Tests' and benches' handle on mosquitto, over the dev cloud's own conf writer and spawn
 * (scripts/dev-cloud/broker-mosquitto.ts: one set of broker rules for `npm start`, tests, benches
 * and the QEMU flow's host cloud): 127.0.0.1 on a free (or given) port, mTLS with
 * `require_certificate true` and `use_identity_as_username true` + `use_username_as_clientid true`
 * (the cert CN is the username and the client id, as on the dev cloud's broker), an optional ACL
 * (benches pass the dev cloud's `mosquittoAcl()`), optional persistence (a bench's cloud session and
 * the events queued for it survive a staged outage), and a log file the test can read back (e.g. to
 * see which username connected) unless `log: false` (a storm of connections). stop() and restart()
 * keep the port.
 * Must never listen beyond loopback, and must never outlive the test or bench (call stop()).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort, spawnMosquitto, writeMosquittoConf } from '../scripts/dev-cloud/broker-mosquitto.ts';
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
  const port = opts.port ?? (await freePort());
  const logging = opts.log ?? true;
  // The dev cloud's conf writer: one set of broker rules for `npm start`, tests and benches.
  const f = writeMosquittoConf({
    dir: opts.dir,
    host: '127.0.0.1',
    port,
    tls: { ca: opts.caPem, cert: opts.serverCert, key: opts.serverKey },
    ...(opts.acl !== undefined ? { acl: opts.acl } : {}),
    persistence: opts.persistence === 'every-change' ? 'every-change' : opts.persistence ? 'on-exit' : false,
    log: logging ? 'file' : 'none',
    ...(opts.extraConf ? { extraConf: opts.extraConf } : {}),
  });

  let child: ChildProcess | undefined;
  const alive = (c: ChildProcess | undefined): c is ChildProcess =>
    !!c && c.exitCode === null && c.signalCode === null;
  const start = async () => {
    child = await spawnMosquitto(binary, { conf: f.conf, host: '127.0.0.1', port });
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
  const log = () => (logging ? readFileSync(f.log, 'utf8') : '');
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
