/**
 * A private nginx with the RTMP module (Debian `nginx` + `libnginx-mod-rtmp`) as a second, foreign
 * relay: own config, `daemon off`, pid and logs in a temp dir, one free loopback port, application
 * `live`. Tests skip by name without it (`needsNginxRtmp()`), except under LENSCAP_TEST_REQUIRE_ALL=1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../scripts/dev-cloud/broker-mosquitto.ts';
import { needs, programPath } from './requires.ts';
import { makeTempDir } from './tmp.ts';
import { reached, waitUntil } from './wait.ts';

const MODULE_DIRS = ['/usr/lib/nginx/modules', '/usr/lib64/nginx/modules', '/usr/share/nginx/modules'];

export function rtmpModulePath(): string | undefined {
  for (const d of MODULE_DIRS)
    if (existsSync(join(d, 'ngx_rtmp_module.so'))) return join(d, 'ngx_rtmp_module.so');
  return undefined;
}

/** node:test options: skip "needs nginx" / "needs libnginx-mod-rtmp" when absent (fails under REQUIRE_ALL). */
export function needsNginxRtmp(): { skip?: string } {
  const n = needs('nginx');
  if (n.skip) return n;
  if (rtmpModulePath()) return {};
  if (process.env.LENSCAP_TEST_REQUIRE_ALL === '1')
    throw new Error('libnginx-mod-rtmp is required (LENSCAP_TEST_REQUIRE_ALL=1) but not installed');
  return { skip: 'needs libnginx-mod-rtmp (not installed)' };
}

export interface NginxRtmp {
  /** rtmp://127.0.0.1:<port>/live — a stream is `${rtmpBase}/<serial>`. */
  rtmpBase: string;
  close(): Promise<void>;
}

export async function startNginxRtmp(): Promise<NginxRtmp> {
  const bin = programPath('nginx')!;
  const mod = rtmpModulePath()!;
  const tmp = makeTempDir('lenscap-nginx-');
  const port = await freePort('127.0.0.1');
  const conf = join(tmp.dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      `load_module ${mod};`,
      'daemon off;',
      'master_process off;',
      `pid ${join(tmp.dir, 'nginx.pid')};`,
      `error_log ${join(tmp.dir, 'error.log')} warn;`,
      'events { worker_connections 64; }',
      'rtmp {',
      '  server {',
      `    listen 127.0.0.1:${port};`,
      '    chunk_size 4096;',
      '    application live { live on; record off; }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(bin, ['-p', tmp.dir, '-c', conf, '-e', join(tmp.dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = () =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
  try {
    await waitUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr.slice(0, 400)}`);
        return listening();
      },
      8000,
      'nginx-rtmp to listen',
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    rtmpBase: `rtmp://127.0.0.1:${port}/live`,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await reached(() => child.exitCode !== null || child.signalCode !== null, 3000);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      tmp.cleanup();
    },
  };
}
