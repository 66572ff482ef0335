// Host side of the QEMU board test's stage 2 (the full flow): the dev cloud on host loopback (the
// same composition `lenscap-dev` runs, in this process so the test holds its cloud client),
// its broker and provisioning ports forwarded into the guest, the guest's gate forwarded to host
// loopback; then grants played from the host, the refusal's event at the broker, SIGTERM, offline.
import https from 'node:https';
import { freePort } from '../../scripts/dev-cloud/broker-mosquitto.ts';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Guest } from '../../scripts/qemu/boot.ts';
import { waitForMark, type Phases } from './marks.ts';
import { execFileSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { openArtifact } from '../../agent/sealing/artifact.ts';
import { suiteFor } from '../../agent/sealing/suite.ts';
import { resolveFfmpegPath } from '../../agent/stream/ffmpeg-path.ts';
import type { CloudClient } from '../../scripts/dev-cloud/cloud-client.ts';
import { claimWithCode } from '../../scripts/dev-cloud/owner-flow.ts';
import { newPhoneKeys } from '../../scripts/dev-cloud/owner-phone.ts';

export const SERIAL = 'CAM-QEMU-1';
const GUEST_GATE_PORT = 8443;
/** Bound on a command's answer from the emulated board. */
const CMD_TIMEOUT_MS = 120_000;

export interface FullFlowHost {
  guestEnv: Record<string, string>;
  guestfwd: { host: number; guest: number }[];
  hostfwd: { host: number; guest: number }[];
  drive(guest: Guest, phases: Phases): Promise<{ figures: Record<string, string | number> }>;
  stop(): Promise<void>;
}

/** What the full flow needs from the agent and the dev cloud; each missing piece is named. */
const NEEDED_VERBS = ['run', 'provision'];
const NEEDED_MODULES = ['../../agent/controller.ts'];

export async function missingFullFlowPieces(root: string): Promise<string[]> {
  const missing: string[] = [];
  const { commands } = await import('../../agent/cli/registry.ts');
  for (const name of NEEDED_VERBS) {
    const c = commands.find((x) => x.name === name);
    if (!c) {
      missing.push(`verb "${name}" (not in the registry)`);
      continue;
    }
    try {
      await c.load();
    } catch (err) {
      missing.push(`verb "${name}" (${firstLine(err)})`);
    }
  }
  for (const m of NEEDED_MODULES) {
    try {
      await import(m);
    } catch (err) {
      missing.push(`${m.replace('../../', '')} (${firstLine(err)})`);
    }
  }
  try {
    await loadStartStack();
  } catch (err) {
    missing.push(`the dev cloud's startStack() (${firstLine(err)})`);
  }
  if (!existsSync(join(root, 'drivers')) || !findFile(join(root, 'drivers'), /v4l2/))
    missing.push('the v4l2 camera driver (drivers/**/v4l2*)');
  return [...new Set(missing)];
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .split('\n')[0]!
    .replace(/ imported from .*/, '');
}

function findFile(dir: string, re: RegExp): boolean {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory() ? findFile(p, re) : re.test(n)) return true;
  }
  return false;
}

/** The part of the dev cloud (scripts/dev-cloud/cloud.ts) this test drives. */
interface HostCloud {
  brokerUrl: string;
  brokerKind: 'aedes' | 'mosquitto';
  provisioningUrl: string;
  provisioningCaFile: string;
  cloud: {
    waitOnline(serial: string, timeoutMs: number): Promise<void>;
    events(): { serial: string; event: unknown }[];
    camera(serial: string): { online: boolean } | undefined;
    command: CloudClient['command'];
  };
  createToken(serial: string): Promise<string>;
  claim(serial: string, owner: string, viewers?: string[], timeoutMs?: number): Promise<void>;
  mintGrant(serial: string, viewer: string, ttlSeconds: number): Promise<{ token: string }>;
  close(): Promise<void>;
}
type StartStack = (o: { dir: string; broker?: 'aedes' | 'mosquitto' }) => Promise<HostCloud>;

/** Loaded by name so this file keeps compiling while the dev cloud's module is being reshaped. */
async function loadStartStack(): Promise<StartStack> {
  const spec = '../../scripts/dev-cloud/cloud.ts';
  const mod = (await import(spec)) as { startStack?: StartStack };
  if (typeof mod.startStack !== 'function')
    throw new Error('scripts/dev-cloud/cloud.ts exports no startStack()');
  return mod.startStack;
}

function portOf(url: string): number {
  const p = Number(new URL(url).port);
  if (!p) throw new Error(`no port in ${url}`);
  return p;
}

interface PlayResult {
  status: number;
  bodyBytes: number;
  flvBytes: number;
  firstVideoMs?: number;
  reason?: string;
}

/** GET the FLV with a grant; reads until the first video tag (or the end), counting media bytes. */
function play(opts: {
  port: number;
  serial: string;
  token: string;
  ca: string;
  timeoutMs: number;
}): Promise<PlayResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = https.get(
      {
        host: '127.0.0.1',
        port: opts.port,
        path: `/live/${opts.serial}.flv`,
        headers: { authorization: `Bearer ${opts.token}` },
        ca: opts.ca,
        servername: opts.serial,
        // The device certificate names the serial (CN); that is the identity a viewer checks.
        checkServerIdentity: (_host, cert) =>
          cert.subject?.CN === opts.serial
            ? undefined
            : new Error(`gate cert CN ${cert.subject?.CN} is not ${opts.serial}`),
        timeout: opts.timeoutMs,
      },
      (res) => {
        let body = Buffer.alloc(0);
        let done = false;
        const finish = (r: PlayResult) => {
          if (done) return;
          done = true;
          req.destroy();
          resolve(r);
        };
        res.on('data', (chunk: Buffer) => {
          body = Buffer.concat([body, chunk]);
          if (body.subarray(0, 3).toString('latin1') !== 'FLV') return;
          let off = 13;
          while (off + 11 <= body.length) {
            if ((body[off]! & 0x1f) === 9)
              return finish({
                status: res.statusCode ?? 0,
                bodyBytes: body.length,
                flvBytes: body.length,
                firstVideoMs: Date.now() - t0,
              });
            off += 11 + body.readUIntBE(off + 1, 3) + 4;
          }
        });
        res.on('end', () => {
          const isFlv = body.subarray(0, 3).toString('latin1') === 'FLV';
          let reason: string | undefined;
          try {
            const j = JSON.parse(body.toString('utf8')) as { reason?: string; error?: string };
            reason = j.reason ?? j.error;
          } catch {
            /* not JSON */
          }
          finish({
            status: res.statusCode ?? 0,
            bodyBytes: body.length,
            flvBytes: isFlv ? body.length : 0,
            ...(reason ? { reason } : {}),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from the gate in ${opts.timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export async function runFullFlowHost(opts: {
  root: string;
  share: string;
  log: (l: string) => void;
}): Promise<FullFlowHost> {
  const stack = await (await loadStartStack())({ dir: join(opts.share, '..', 'dev-cloud'), broker: 'aedes' });
  const brokerPort = portOf(stack.brokerUrl);
  const provPort = portOf(stack.provisioningUrl);
  const gatePort = await freePort();
  copyFileSync(stack.provisioningCaFile, join(opts.share, 'provisioning-ca.pem'));
  const token = await stack.createToken(SERIAL);
  opts.log(
    `dev cloud: broker ${stack.brokerUrl}, provisioning ${stack.provisioningUrl}; guest gate → 127.0.0.1:${gatePort}`,
  );

  return {
    guestEnv: {
      SERIAL,
      TOKEN: token,
      PROV_URL: stack.provisioningUrl,
      BROKER_URL: stack.brokerUrl,
      CLOUD_PROTO: stack.brokerKind === 'aedes' ? '4' : '5',
      FWD_PORTS: `${brokerPort} ${provPort}`,
      GATE_PORT: String(GUEST_GATE_PORT),
    },
    guestfwd: [
      { guest: brokerPort, host: brokerPort },
      { guest: provPort, host: provPort },
    ],
    hostfwd: [{ host: gatePort, guest: GUEST_GATE_PORT }],
    async drive(guest, phases) {
      const figures: Record<string, string | number> = {};
      const share = opts.share;
      phases.start('provision in guest');
      await waitForMark(guest, share, 'provisioned', 300_000);
      phases.end('provision in guest');

      // Online: from the host's "start" to the camera's retained online state at the broker.
      const tStart = Date.now();
      writeFileSync(join(share, 'start-agent'), '');
      await stack.cloud.waitOnline(SERIAL, 420_000);
      figures['time to online (start → retained online at host broker, ms)'] = Date.now() - tStart;
      phases.done.push({ name: 'agent start → online', ms: Date.now() - tStart });

      // Idle figures, measured in the guest (arm-figures.mjs): link up, capture idle, no viewer.
      phases.start('idle figures in guest');
      writeFileSync(join(share, 'measure-idle'), '');
      await waitForAnyMark(guest, share, ['idle-measured', 'arm-figures-failed'], 240_000);
      phases.end('idle figures in guest');

      // Commands get minutes, not the dev cloud's seconds: TCG on a busy host is 10–50× slower.
      await stack.claim(SERIAL, 'alice', [], CMD_TIMEOUT_MS);
      const ca = readFileSync(join(share, 'device-ca.pem'), 'utf8');

      const valid = await stack.mintGrant(SERIAL, 'alice', 300);
      const ok = await play({ port: gatePort, serial: SERIAL, token: valid.token, ca, timeoutMs: 120_000 });
      if (ok.status !== 200 || ok.firstVideoMs === undefined)
        throw new Error(`valid grant: HTTP ${ok.status}, ${ok.flvBytes} FLV bytes, no video tag`);
      figures['time to first frame (valid grant request → first FLV video tag, on demand, ms)'] =
        ok.firstVideoMs;
      // Warm joins: capture running now; each a fresh grant (one use each), one after the other.
      const warm: number[] = [];
      for (let i = 0; i < WARM_JOINS; i++) {
        const g = await stack.mintGrant(SERIAL, 'alice', 300);
        const w = await play({ port: gatePort, serial: SERIAL, token: g.token, ca, timeoutMs: 60_000 });
        if (w.status !== 200 || w.firstVideoMs === undefined)
          throw new Error(`warm join ${i + 1}: HTTP ${w.status}, ${w.flvBytes} FLV bytes, no video tag`);
        warm.push(w.firstVideoMs);
      }
      const warmJoinMs = median(warm);
      figures[
        `warm join through the gate (grant request → first FLV video tag, median of ${WARM_JOINS}, ms)`
      ] = warmJoinMs;

      // Misrouted: a real grant, but for another camera (what the mixed-up cache did).
      const misrouted = await stack.mintGrant('CAM-QEMU-OTHER', 'alice', 300);
      const tRefused = Date.now();
      const bad = await play({
        port: gatePort,
        serial: SERIAL,
        token: misrouted.token,
        ca,
        timeoutMs: 60_000,
      });
      if (bad.status !== 403 || bad.flvBytes !== 0)
        throw new Error(`misrouted grant: HTTP ${bad.status}, ${bad.flvBytes} FLV bytes (want 403, 0)`);
      figures['misrouted grant'] =
        `HTTP ${bad.status}, reason ${bad.reason ?? '?'}, 0 media bytes (${bad.bodyBytes} body bytes)`;
      const event = await waitFor(
        () =>
          stack.cloud
            .events()
            .find((e) => e.serial === SERIAL && JSON.stringify(e.event).includes('wrong_audience')),
        60_000,
      );
      if (!event)
        throw new Error(
          `no wrong_audience security event from ${SERIAL} at the host broker; got ${JSON.stringify(stack.cloud.events().slice(-3))}`,
        );
      figures['refusal event at host broker (ms after the refusal)'] = Date.now() - tRefused;

      // Motion events (issue 16): the owner claims the camera with the label code (membership with
      // alice's HPKE key), turns events on (cmd/events), then vivid moves; one snapshot + one clip must be sealed on the board,
      // and open with alice's key on the host.
      const devDir = join(share, '..', 'dev-cloud');
      const code = readFileSync(join(share, 'claim-code'), 'utf8').trim();
      const alice = newPhoneKeys('alice');
      await claimWithCode((s, op, p) => stack.cloud.command(s, op, p, CMD_TIMEOUT_MS), {
        devDir,
        serial: SERIAL,
        code,
        owner: alice,
      });
      // Events are off until the owner turns them on (issue 16): cmd/events, as a phone would.
      const on = await stack.cloud.command(SERIAL, 'events', { enabled: true }, CMD_TIMEOUT_MS);
      if (on.status !== 'ok') throw new Error(`cmd/events refused: ${JSON.stringify(on)}`);
      const tMotion = Date.now();
      writeFileSync(join(share, 'motion-on'), '');
      await waitForMark(guest, share, 'motion-recorded', 360_000);
      figures['motion → snapshot + clip sealed on the board (vivid moving, ms)'] = Date.now() - tMotion;
      const pair = await hpkePair(alice.hpkePrivate);
      const sealedFiles = readdirSync(share).filter((f) => f.endsWith('.sealed'));
      const opened: string[] = [];
      for (const f of sealedFiles) {
        const r = await openArtifact(readFileSync(join(share, f)), pair, { serial: SERIAL });
        if (!r.ok) throw new Error(`${f}: alice's key cannot open it (${r.code}: ${r.detail})`);
        const frames = decodedFrames(r.plaintext, r.header.kind === 'snapshot' ? 'jpeg_pipe' : 'mp4');
        if (frames < 1) throw new Error(`${f}: opened but does not decode`);
        opened.push(
          `${r.header.kind} ${r.plaintext.length} B, ${frames} frame(s), ${r.header.durationMs} ms`,
        );
      }
      figures['motion artifacts opened on the host with the owner key'] = opened.length
        ? opened.join('; ')
        : 'none left in the spool (taken by the upload sink); sealing witnessed in the journal';

      // SIGTERM through systemd; the camera must say offline at the broker.
      const tStop = Date.now();
      writeFileSync(join(share, 'stop-agent'), '');
      await waitForMark(guest, share, 'agent-stopped', 120_000);
      const offline = await waitFor(() => stack.cloud.camera(SERIAL)?.online === false, 60_000);
      if (!offline)
        throw new Error(
          `${SERIAL} still online at the broker after SIGTERM: ${JSON.stringify(stack.cloud.camera(SERIAL))}`,
        );
      figures['SIGTERM → offline at host broker (ms)'] = Date.now() - tStop;
      await waitForMark(guest, share, 'stage2-done', 420_000);
      const arm = armFigures(share, ok.firstVideoMs, warmJoinMs);
      Object.assign(figures, arm.printable);
      writeFileSync(join(share, '..', 'arm-figures.json'), JSON.stringify(arm.json, null, 2) + '\n');
      return { figures };
    },
    async stop() {
      await stack.close();
    },
  };
}

const WARM_JOINS = 5;

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

async function waitForAnyMark(guest: Guest, share: string, names: string[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const marks = existsSync(join(share, 'marks')) ? readFileSync(join(share, 'marks'), 'utf8') : '';
    if (names.some((n) => new RegExp(`^${n} `, 'm').test(marks))) return;
    if (guest.proc.exitCode !== null) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The arm64 figures (issue 18 goal 4) from the guest's measurements and the host's plays: idle RSS
 * and CPU of the agent (and a bare node beside it), cold start (capture idle → first video tag
 * through the gate, as the host sees it: it includes the emulated network) over ffmpeg alone on
 * the capture's own arguments, warm join through the gate. Emulated (TCG): ratios, not absolutes.
 * Written to .qemu-cache/last-run/arm-figures.json for docs/benchmarks.md's arm64 column.
 */
function armFigures(
  share: string,
  coldStartMs: number,
  warmJoinMs: number,
): { json: Record<string, unknown>; printable: Record<string, string | number> } {
  const read = (f: string) =>
    existsSync(join(share, f))
      ? (JSON.parse(readFileSync(join(share, f), 'utf8')) as Record<string, number> & { [k: string]: number })
      : null;
  const idle = read('arm-idle.json') as {
    rssMb: number;
    cpuPercent: number;
    bareNodeRssMb: number;
    nodeFlags: string;
  } | null;
  const ff = read('arm-ffmpeg.json') as { ffmpegFirstKeyframeMs: number } | null;
  const failed = existsSync(join(share, 'arm-figures.failed'))
    ? readFileSync(join(share, 'arm-figures.failed'), 'utf8').trim()
    : null;
  const json: Record<string, unknown> = {
    arch: 'arm64',
    emulated: 'QEMU TCG cortex-a53 × 2 on this host: compare ratios, not absolutes',
    measuredAt: new Date().toISOString(),
    rssMb: idle?.rssMb ?? null,
    cpuPercent: idle?.cpuPercent ?? null,
    bareNodeRssMb: idle?.bareNodeRssMb ?? null,
    nodeFlags: idle?.nodeFlags ?? null,
    coldStartMs,
    ffmpegFirstKeyframeMs: ff?.ffmpegFirstKeyframeMs ?? null,
    coldOverFfmpeg: ff?.ffmpegFirstKeyframeMs ? coldStartMs / ff.ffmpegFirstKeyframeMs : null,
    warmJoinMs,
    warmOverCold: warmJoinMs / coldStartMs,
    ...(failed ? { failed } : {}),
  };
  const printable: Record<string, string | number> = {
    'arm64 idle RSS (MB; bare node beside it)': idle
      ? `${idle.rssMb.toFixed(1)} (bare node ${idle.bareNodeRssMb.toFixed(1)}; ratio ${(idle.rssMb / idle.bareNodeRssMb).toFixed(2)})`
      : `not measured${failed ? `: ${failed}` : ''}`,
    'arm64 idle CPU (% of one core)': idle ? idle.cpuPercent.toFixed(2) : 'not measured',
    'arm64 ffmpeg alone, spawn → first keyframe (ms)': ff
      ? Math.round(ff.ffmpegFirstKeyframeMs)
      : 'not measured',
    'arm64 cold start over ffmpeg alone': ff
      ? (coldStartMs / ff.ffmpegFirstKeyframeMs).toFixed(2)
      : 'not measured',
  };
  return { json, printable };
}

async function hpkePair(priv: KeyObject): Promise<CryptoKeyPair> {
  const jwk = priv.export({ format: 'jwk' });
  const kem = (await suiteFor('X25519')).kem;
  const { d: _d, ...pub } = jwk;
  return {
    privateKey: await kem.importKey('jwk', jwk as JsonWebKey, false),
    publicKey: await kem.importKey('jwk', pub as JsonWebKey, true),
  };
}

/** Frames the host's ffmpeg decodes from an opened artifact (0 when it cannot). */
function decodedFrames(bytes: Uint8Array, format: 'jpeg_pipe' | 'mp4'): number {
  try {
    const out = execFileSync(
      resolveFfmpegPath().path,
      ['-hide_banner', '-v', 'error', '-f', format, '-i', 'pipe:0', '-f', 'framemd5', '-'],
      { input: bytes, encoding: 'utf8', timeout: 30_000 },
    );
    return out.split('\n').filter((l) => /^\d+,/.test(l)).length;
  } catch {
    return 0;
  }
}

async function waitFor<T>(fn: () => T | undefined | false, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}
