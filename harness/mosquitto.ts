/**
 * A real mosquitto for tests: 127.0.0.1 on a free port, mTLS with `require_certificate true` and
 * `use_identity_as_username true` + `use_username_as_clientid true` (the cert CN is the username and
 * the client id), an optional ACL, and a log file the
 * test can read back (e.g. to see which username connected). stop() and restart() keep the port.
 * Must never listen beyond loopback, and must never outlive the test (call stop()).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { freePort } from '../scripts/dev-cloud/broker-mosquitto.ts';
import { join } from 'node:path';
import { programPath } from './requires.ts';

export interface MosquittoTestOptions {
  /** Directory for conf, certs, ACL and log (the test's temp dir or a subdir). */
  dir: string;
  /** CA that client certificates must chain to (PEM). */
  caPem: string;
  /** Broker server cert + key (PEM) for 127.0.0.1. */
  serverCert: string;
  serverKey: string;
  /** ACL file content; absent: no ACL (every authenticated client may use every topic). */
  acl?: string;
  /** Extra mosquitto.conf lines appended to the listener (e.g. 'max_inflight_messages 10'). */
  extraConf?: string[];
  /** Fixed port (restart uses the same); default: a free one. */
  port?: number;
}

export interface TestMosquitto {
  url: string;
  port: number;
  logFile: string;
  pid(): number | undefined;
  /** The log so far. */
  log(): string;
  /** Usernames mosquitto reported for new clients ("New client connected ... u'CAM-0001'"). */
  usernames(): string[];
  /** Resolves when the log matches (polls). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
  /** Stop then start again on the same port with the same config. */
  restart(): Promise<void>;
}

/** One free-port helper for the whole repo (the dev cloud's); re-exported for tests. */
export { freePort };

function waitListening(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`mosquitto exited with code ${child.exitCode}`));
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`mosquitto did not listen on 127.0.0.1:${port}`));
        else setTimeout(attempt, 40);
      });
    };
    attempt();
  });
}

export async function startMosquitto(opts: MosquittoTestOptions): Promise<TestMosquitto> {
  const binary = programPath('mosquitto');
  if (!binary) throw new Error('mosquitto is not installed');
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const port = opts.port ?? (await freePort());
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
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'per_listener_settings false',
    'persistence false',
    'allow_anonymous false',
    ...(opts.acl !== undefined ? [`acl_file ${f.acl}`] : []),
    `log_dest file ${f.log}`,
    'log_type all',
    'connection_messages true',
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
  const start = async () => {
    const c = spawn(binary, ['-c', f.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child = c;
    try {
      await waitListening(port, c, 5000);
    } catch (err) {
      c.kill('SIGKILL');
      throw new Error(`${(err as Error).message}: ${stderr.trim()}`, { cause: err });
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
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
    log,
    usernames: () =>
      [...log().matchAll(/New client connected from \S+ as \S+ \([^)]*\bu'([^']*)'\)/g)].map((m) => m[1]!),
    async waitForLog(pattern, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = log();
        const m = pattern.exec(text);
        if (m) return m[0];
        if (Date.now() > deadline)
          throw new Error(
            `mosquitto log did not match ${pattern} within ${timeoutMs} ms:\n${text.slice(-1500)}`,
          );
        await new Promise((r) => setTimeout(r, 40));
      }
    },
    stop,
    async restart() {
      await stop();
      await start();
    },
  };
}
