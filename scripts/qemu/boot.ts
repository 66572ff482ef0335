/**
 * Boots the emulated ARM board (QEMU TCG, `virt` machine) from the cached image, with user-mode
 * networking on restrict=on: the guest reaches only the host loopback ports the caller forwards
 * (guestfwd, via 10.0.2.100) and the host reaches only the guest ports it maps (hostfwd, bound to
 * 127.0.0.1). A 9p share carries the scenario, the bundle and the results; the image's harness
 * runs `scenario.sh` from it and powers off.
 * Must never expose a guest port beyond host loopback, nor write into the cached image (the disk
 * is attached with snapshot=on).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LenscapError } from '../../agent/errors.ts';
import type { ToolCode } from '../dev-codes.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

export type GuestArch = 'arm64' | 'armhf';

export interface PortMap {
  /** Port on host loopback. */
  host: number;
  /** Port in the guest (hostfwd: where the guest listens; guestfwd: what it dials at 10.0.2.100). */
  guest: number;
}

export interface BootOptions {
  arch?: GuestArch;
  /** Cache dir from buildImage(): vmlinuz, initrd.img, rootfs.img. */
  image: string;
  /** Host dir shared with the guest as /mnt/host. */
  share: string;
  /** Serial console log file. */
  consoleLog: string;
  /** Host loopback → guest ports (the camera's gate). */
  hostfwd?: PortMap[];
  /** Guest 10.0.2.100:guest → host 127.0.0.1:host (broker, provisioning). */
  guestfwd?: PortMap[];
  memMb?: number;
  smp?: number;
}

export interface Guest {
  proc: ChildProcess;
  startedAt: number;
  /** Resolves with QEMU's exit code once it stops. */
  exited: Promise<number | null>;
  /** Waits until `name` exists in the share; rejects on timeout or if QEMU exits first. */
  waitForFile(name: string, timeoutMs: number): Promise<string>;
  /** Kills QEMU (SIGTERM, then SIGKILL) and waits for it. */
  kill(): Promise<void>;
  console(): string;
}

/** Builds (or finds in the cache) the guest image; returns its cache dir. Needs root to build. */
export function buildImage(arch: GuestArch = 'arm64'): string {
  const r = spawnSync(join(here, 'image.sh'), [arch], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 30 * 60_000,
  });
  if (r.status !== 0)
    throw new LenscapError<ToolCode>(
      'ERR_QEMU_IMAGE',
      `guest image build failed (exit ${r.status ?? r.signal})`,
    );
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(join(dir, 'rootfs.img')))
    throw new LenscapError<ToolCode>('ERR_QEMU_IMAGE', `image script printed no image dir (${dir})`);
  return dir;
}

export function qemuArgs(opts: BootOptions): { bin: string; args: string[] } {
  const arch = opts.arch ?? 'arm64';
  const fwd = [
    ...(opts.hostfwd ?? []).map((p) => `hostfwd=tcp:127.0.0.1:${p.host}-:${p.guest}`),
    ...(opts.guestfwd ?? []).map(
      (p) =>
        `guestfwd=tcp:10.0.2.100:${p.guest}-cmd:${process.execPath} ${join(here, 'pipe-to-port.mjs')} ${p.host}`,
    ),
  ];
  for (const f of fwd)
    if (f.includes(','))
      throw new LenscapError<ToolCode>('ERR_QEMU_ARGS', `forward spec may not contain a comma: ${f}`);
  const common = [
    '-accel',
    'tcg,thread=multi',
    '-smp',
    String(opts.smp ?? 2),
    '-m',
    String(opts.memMb ?? 1024),
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    `file:${opts.consoleLog}`,
    '-no-reboot',
    '-kernel',
    join(opts.image, 'vmlinuz'),
    '-initrd',
    join(opts.image, 'initrd.img'),
    '-append',
    `console=${arch === 'arm64' ? 'ttyAMA0' : 'ttyAMA0'} root=/dev/vda rw quiet net.ifnames=0 panic=-1 systemd.show_status=0`,
    '-drive',
    `file=${join(opts.image, 'rootfs.img')},format=raw,if=virtio,snapshot=on`,
    '-netdev',
    ['user', 'id=n0', 'restrict=on', ...fwd].join(','),
    '-device',
    'virtio-net-pci,netdev=n0,romfile=',
    '-virtfs',
    `local,path=${opts.share},mount_tag=hostshare,security_model=none,id=hs`,
    '-device',
    'virtio-rng-pci',
  ];
  if (arch === 'arm64')
    return { bin: 'qemu-system-aarch64', args: ['-M', 'virt', '-cpu', 'cortex-a53', ...common] };
  return { bin: 'qemu-system-arm', args: ['-M', 'virt', '-cpu', 'cortex-a15', ...common] };
}

export function bootGuest(opts: BootOptions): Guest {
  const { bin, args } = qemuArgs(opts);
  const startedAt = Date.now();
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stdout?.on('data', (b: Buffer) => (stderr += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
    proc.on('error', (err) => {
      stderr += String(err);
      exitCode = -1;
      resolve(-1);
    });
  });
  const consoleText = () => (existsSync(opts.consoleLog) ? readFileSync(opts.consoleLog, 'utf8') : '');
  return {
    proc,
    startedAt,
    exited,
    console: consoleText,
    async waitForFile(name, timeoutMs) {
      const file = join(opts.share, name);
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (existsSync(file)) return file;
        if (exitCode !== undefined) {
          throw new LenscapError<ToolCode>(
            'ERR_QEMU_EXITED',
            `QEMU exited (${exitCode}) before ${name} appeared${stderr ? `: ${stderr.trim().slice(-500)}` : ''}\nconsole tail:\n${consoleText().slice(-1500)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new LenscapError<ToolCode>(
        'ERR_QEMU_TIMEOUT',
        `${name} did not appear within ${timeoutMs} ms\nconsole tail:\n${consoleText().slice(-1500)}`,
      );
    },
    async kill() {
      if (exitCode !== undefined) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
