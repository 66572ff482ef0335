/**
 * The fleet benches' broker: a real mosquitto on loopback with mTLS (certificate CN = username) and
 * the dev cloud's per-serial ACL (scripts/dev-cloud/broker-mosquitto.ts `mosquittoAcl`), restartable
 * on the same port so a bench can stage an outage. Persistence is on: the cloud's own persistent
 * session (and the security events queued for it) survives the restart, as it would in production.
 * Must never listen beyond 127.0.0.1 and never be left running (stop() in a finally block).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort, mosquittoAcl } from '../scripts/dev-cloud/broker-mosquitto.ts';
import { findBinary } from './requires.ts';

export interface AclBrokerOptions {
  dir: string;
  /** Device CA (clients) and the broker's own certificate. */
  ca: string;
  cert: string;
  key: string;
  port?: number;
}

export interface AclBroker {
  url: string;
  port: number;
  /** Stops the broker: SIGTERM (a clean stop that saves the persistent sessions) or SIGKILL. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port with the same config. */
  restart(): Promise<void>;
  running(): boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function portOpen(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), r(true)));
    s.once('error', () => (s.destroy(), r(false)));
  });
}

export async function startAclBroker(opts: AclBrokerOptions): Promise<AclBroker> {
  const bin = findBinary('mosquitto');
  if (!bin) throw new Error('needs mosquitto (apt-get install mosquitto)');
  const port = opts.port ?? (await freePort());
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(opts.dir, 'ca.pem'), opts.ca, { mode: 0o600 });
  writeFileSync(join(opts.dir, 'broker.crt'), opts.cert, { mode: 0o600 });
  writeFileSync(join(opts.dir, 'broker.key'), opts.key, { mode: 0o600 });
  writeFileSync(join(opts.dir, 'acl.conf'), mosquittoAcl(), { mode: 0o600 });
  const conf = [
    process.getuid?.() === 0 ? 'user root' : '',
    'per_listener_settings false',
    'persistence true',
    `persistence_location ${opts.dir}/`,
    'autosave_interval 0',
    'allow_anonymous false',
    `acl_file ${join(opts.dir, 'acl.conf')}`,
    'log_dest none',
    'max_connections -1',
    'max_queued_messages 100000',
    `listener ${port} 127.0.0.1`,
    `cafile ${join(opts.dir, 'ca.pem')}`,
    `certfile ${join(opts.dir, 'broker.crt')}`,
    `keyfile ${join(opts.dir, 'broker.key')}`,
    'require_certificate true',
    'use_identity_as_username true',
    'use_username_as_clientid true',
    'tls_version tlsv1.2',
    '',
  ].join('\n');
  const confPath = join(opts.dir, 'mosquitto.conf');
  writeFileSync(confPath, conf, { mode: 0o600 });

  let child: ChildProcess | undefined;
  const launch = async () => {
    const c = spawn(bin, ['-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child = c;
    const deadline = Date.now() + 5000;
    while (!(await portOpen(port))) {
      if (c.exitCode !== null || Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`mosquitto did not start on ${port}: ${err.trim()}`);
      }
      await sleep(25);
    }
  };
  await launch();
  return {
    url: `mqtts://127.0.0.1:${port}`,
    port,
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    async stop(signal = 'SIGTERM') {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill(signal);
      const t = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
    async restart() {
      if (child && child.exitCode === null && child.signalCode === null)
        throw new Error('broker still running');
      await launch();
    },
  };
}
