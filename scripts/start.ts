/**
 * `npm start`: the whole system on one machine. Starts the dev cloud (CA and provisioning, mTLS
 * broker, grant endpoint, relay, viewer page), provisions CAM-DEMO-1 and CAM-DEMO-2 through the real
 * provisioning flow (a one-time token and `lenscap provision`), starts both agents with
 * `lenscap run`, claims them for alice and bob with signed binding records sent as cloud `binding`
 * commands, turns motion events on with the owner's `events` command (test pattern cameras with
 * the motion hook, so the page's "Wave at the camera" makes motion), writes .lenscap/stack.json,
 * and stops every child on Ctrl-C/SIGTERM.
 * Must never copy identity files into a camera's state dir (provisioning does that), and must never
 * leave a child process or stack.json behind when it stops.
 *
 *   npm start [-- --reset] [--broker aedes|mosquitto|rabbitmq] [--open] [--port N] [--dir DIR]
 *
 * The page listens on 127.0.0.1:8470 unless --port says otherwise (a stable origin keeps the
 * browser's keys across restarts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeError, isLenscapError, LenscapError } from '../agent/errors.ts';
import { createLogger } from '../agent/log.ts';
import { stateLayout } from '../agent/state-layout.ts';
import { resolveFfmpegPath } from '../agent/stream/ffmpeg-path.ts';
import { testPatternFont } from '../drivers/camera/testpattern.ts';
import { DEMO_USERS } from './dev-cloud/api.ts';
import { startStack, type BrokerKind, type DevCloudStack } from './dev-cloud/cloud.ts';
import { claimWithCode } from './dev-cloud/owner-flow.ts';
import { loadOrCreatePhoneKeys } from './dev-cloud/owner-phone.ts';
import type { ToolCode } from './dev-codes.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * The page's fixed default port: the browser keeps each user's keys in IndexedDB per origin
 * (scheme, host, port), so the same port across restarts keeps the same keys. `--port N` changes
 * it (`--port 0`: any free port, a new origin each run — tests do that).
 */
const DEFAULT_PAGE_PORT = 8470;

interface DemoCamera {
  serial: string;
  owner: string;
  label: string;
  color: string;
  driver: 'v4l2' | 'testpattern';
}

interface RunningCamera extends DemoCamera {
  stateDir: string;
  configPath: string;
  logPath: string;
  gateUrl: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** The label's claim code (as printed at provisioning). */
  claimCode?: string;
  /** Motion events turned on (cmd/events), and the test pattern's motion hook file if any. */
  events?: { on: boolean; why: string; motionFile?: string };
}

function demoCameras(): DemoCamera[] {
  const hasV4l2 = existsSync('/dev/video0');
  return [
    {
      serial: 'CAM-DEMO-1',
      owner: 'alice',
      label: hasV4l2 ? 'CAM-DEMO-1 /dev/video0' : 'CAM-DEMO-1',
      color: 'white',
      driver: hasV4l2 ? 'v4l2' : 'testpattern',
    },
    { serial: 'CAM-DEMO-2', owner: 'bob', label: 'CAM-DEMO-2', color: 'yellow', driver: 'testpattern' },
  ];
}

// ---- progress output ----------------------------------------------------------------------
let stepNo = 0;
const STEPS = 9;
async function step<T>(title: string, fn: () => Promise<T>, detail?: (v: T) => string): Promise<T> {
  stepNo += 1;
  const t0 = Date.now();
  process.stdout.write(`[${stepNo}/${STEPS}] ${title} … `);
  try {
    const v = await fn();
    process.stdout.write(`ok (${((Date.now() - t0) / 1000).toFixed(1)} s)${detail ? ` ${detail(v)}` : ''}\n`);
    return v;
  } catch (err) {
    process.stdout.write('FAILED\n');
    throw err;
  }
}

/** Runs `lenscap <args>` from the sources (so a stale dist/ is never used). */
function lenscapArgs(args: string[]): string[] {
  return ['--import', 'tsx', join(REPO, 'agent', 'main.ts'), ...args];
}

function runLenscap(
  args: string[],
  log: WriteStream,
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, lenscapArgs(args), {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      log.write(d);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new LenscapError<ToolCode>(
          'ERR_START_TIMEOUT',
          `lenscap ${args[0]} took longer than ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolvePromise({ code, out });
    });
  });
}

/**
 * The test pattern's motion hook needs ffmpeg's drawtext and a font; without them the pattern is
 * testsrc2, which a detector rightly calls motion all the time, so events stay off there.
 */
function motionHookAvailable(): { ok: boolean; why: string } {
  if (!testPatternFont()) return { ok: false, why: 'no DejaVu font for the test pattern motion hook' };
  try {
    const filters = execFileSync(resolveFfmpegPath().path, ['-hide_banner', '-filters'], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    return /\bdrawtext\b/.test(filters)
      ? { ok: true, why: 'test pattern motion hook' }
      : { ok: false, why: 'this ffmpeg has no drawtext filter (test pattern motion hook)' };
  } catch (err) {
    return { ok: false, why: `ffmpeg -filters failed: ${(err as Error).message}` };
  }
}

function agentConfig(cam: DemoCamera, stateDir: string, stack: DevCloudStack) {
  return {
    serial: cam.serial,
    stateDir,
    log: { level: 'info' },
    cloud: {
      // Every node of a cluster: the link starts at a random one and fails over to the others.
      url: stack.brokerUrls.length > 1 ? stack.brokerUrls : stack.brokerUrl,
      // aedes and RabbitMQ 3.10 speak MQTT 3.1.1 only.
      protocolVersion: stack.brokerKind === 'mosquitto' ? 5 : 4,
      // RabbitMQ: a QoS 1 clean-session queue would strand the camera while its node is down.
      // and its routing keys split on ".": `cmd/claim.nonce` arrives as `cmd/claim/nonce`.
      ...(stack.brokerKind === 'rabbitmq' ? { commandQos: 0, dotsSplitLevels: true } : {}),
      keepaliveSeconds: 30,
      // One machine, two cameras: no stampede to avoid, so come online at once.
      backoff: { baseMs: 500, capMs: 5000, initialDelayMaxMs: 0 },
    },
    gate: {
      host: '127.0.0.1',
      // Any free port: the camera reports its gate URL in its retained state (no pick-then-bind race).
      port: 0,
      // Plain HTTP on loopback: a browser would not trust the dev device CA's certificate.
      tls: false,
      viewerOrigins: [stack.pageUrl, stack.pageUrl.replace('127.0.0.1', 'localhost')],
    },
    stream: { mode: 'on-demand', idleStopSeconds: 15 },
    // Sealed event artifacts go to the dev object store (presigned PUT, its CA only).
    uploads: { host: stack.objectStore.host, ca: stack.objectStore.caFile },
    // Still picture with a block that moves on demand (the page's "Wave at the camera").
    camera: {
      driver: cam.driver,
      label: cam.label,
      color: cam.color,
      ...(cam.driver === 'testpattern' ? { testPatternMotionHook: true } : {}),
    },
    // Off until the owner's `events` command (sent once the cameras are claimed); shorter than the
    // defaults so a demo event's clip is uploaded a few seconds after the motion stops.
    events: { enabled: false, preRollSeconds: 2, postRollSeconds: 2, maxClipSeconds: 15, cooldownSeconds: 3 },
    telemetry: { intervalSeconds: 5 },
  };
}

function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return Promise.resolve();
  const pid = child.pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const killer = setTimeout(() => {
    // Its own process group (detached): takes any ffmpeg it left behind with it.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, graceMs);
  return exited.then(() => {
    clearTimeout(killer);
    // Whatever is still in its group (an orphaned ffmpeg) goes too.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* group empty */
    }
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      reset: { type: 'boolean', default: false },
      broker: { type: 'string', default: 'aedes' },
      open: { type: 'boolean', default: false },
      dir: { type: 'string' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm start [-- --reset] [--broker aedes|mosquitto|rabbitmq] [--open] [--port N] [--dir DIR]\n',
    );
    return 0;
  }
  if (values.broker !== 'aedes' && values.broker !== 'mosquitto' && values.broker !== 'rabbitmq')
    throw new LenscapError<ToolCode>(
      'ERR_CLI_USAGE',
      `--broker must be aedes, mosquitto or rabbitmq, not ${values.broker}`,
    );
  const root = resolve(values.dir ?? process.env.LENSCAP_HOME ?? join(process.cwd(), '.lenscap'));
  const stackFile = join(root, 'stack.json');
  const show = (p: string) =>
    relative(process.cwd(), p).startsWith('..') ? p : `./${relative(process.cwd(), p)}`;

  if (values.reset && existsSync(root)) rmSync(root, { recursive: true, force: true });
  const reused = existsSync(join(root, 'dev'));
  mkdirSync(join(root, 'logs'), { recursive: true, mode: 0o700 });
  const logger = createLogger({
    destination: createWriteStream(join(root, 'logs', 'dev-cloud.log'), { flags: 'a' }),
  });
  process.stdout.write(
    `lenscap local stack in ${show(root)} (${reused ? 'reusing it; --reset starts clean' : 'fresh'})\n`,
  );

  const cameras: RunningCamera[] = [];
  let stack: DevCloudStack | undefined;
  let stopping: Promise<void> | undefined;
  const shutdown = (why: string): Promise<void> => {
    stopping ??= (async () => {
      process.stdout.write(`\nstopping (${why}) …\n`);
      rmSync(stackFile, { force: true });
      await Promise.all(cameras.map((c) => stopChild(c.child, c.exited, 8000)));
      await stack?.close().catch((err) => logger.error({ err: describeError(err) }, 'closing the dev cloud'));
      process.stdout.write('stopped: every child process ended, ports freed.\n');
    })();
    return stopping;
  };
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    shutdown(sig).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    stack = await step(
      `dev cloud: CA + provisioning, broker (${values.broker}, mTLS), grant endpoint, relay, page`,
      () =>
        startStack({
          dir: join(root, 'dev'),
          broker: values.broker as BrokerKind,
          pagePort: pagePort(values.port),
          logger,
        }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EADDRINUSE') throw err;
          throw new LenscapError<ToolCode>(
            'ERR_CLI_USAGE',
            `the page's port is in use (${err.message}): another npm start? pass --port N (0 = any free port; the browser's keys are kept per port)`,
          );
        }),
      (s) => s.pageUrl,
    );
    const s = stack;
    const plan = demoCameras();

    await step('provision CAM-DEMO-1 and CAM-DEMO-2 (one-time token + lenscap provision)', async () => {
      // In parallel: each is its own process (key generation on the "device" dominates).
      await Promise.all(
        plan.map(async (cam) => {
          const stateDir = join(root, 'cameras', cam.serial);
          mkdirSync(dirname(stateDir), { recursive: true, mode: 0o700 });
          const log = createWriteStream(join(root, 'logs', `${cam.serial}.provision.log`), { flags: 'a' });
          const token = await s.createToken(cam.serial);
          const r = await runLenscap(
            [
              'provision',
              '--serial',
              cam.serial,
              '--url',
              s.provisioningUrl,
              '--token',
              token,
              '--ca',
              s.provisioningCaFile,
              '--state-dir',
              stateDir,
            ],
            log,
            90_000,
          );
          log.end();
          if (r.code !== 0)
            throw new LenscapError<ToolCode>(
              'ERR_START_PROVISION',
              `lenscap provision ${cam.serial} failed (exit ${r.code}): ${r.out.trim().split('\n').slice(-2).join(' | ')}`,
            );
        }),
      );
    });

    await step(
      'start two agents (lenscap run --config …)',
      async () => {
        for (const cam of plan) {
          const stateDir = join(root, 'cameras', cam.serial);
          const configPath = join(root, 'cameras', `${cam.serial}.json`);
          writeFileSync(configPath, JSON.stringify(agentConfig(cam, stateDir, s), null, 2) + '\n', {
            mode: 0o600,
          });
          const logPath = join(root, 'logs', `${cam.serial}.log`);
          const out = createWriteStream(logPath, { flags: 'a' });
          const child = spawn(process.execPath, lenscapArgs(['run', '--config', configPath]), {
            cwd: REPO,
            stdio: ['ignore', 'pipe', 'pipe'],
            detached: true,
          });
          child.stdout?.pipe(out);
          child.stderr?.pipe(out);
          const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
          const running: RunningCamera = {
            ...cam,
            stateDir,
            configPath,
            logPath,
            gateUrl: '',
            child,
            exited,
          };
          cameras.push(running);
          void exited.then((code) => {
            if (!stopping)
              process.stdout.write(`\n${cam.serial} agent exited (code ${code}); see ${show(logPath)}\n`);
          });
        }
      },
      () => cameras.map((c) => `${c.serial} pid ${c.child.pid}`).join(', '),
    );

    await step('wait for both cameras online (retained MQTT state)', async () => {
      await Promise.all(
        cameras.map((c) =>
          Promise.race([
            s.cloud.waitOnline(c.serial, 45_000),
            c.exited.then((code) => {
              throw new LenscapError<ToolCode>(
                'ERR_START_AGENT',
                `${c.serial} agent exited with code ${code} before going online; see ${show(c.logPath)}`,
              );
            }),
          ]),
        ),
      );
      for (const c of cameras) {
        // Where the camera says its gate is (retained state), as a real cloud would learn it.
        const gate = s.cloud.camera(c.serial)?.state.gate;
        if (typeof gate !== 'string' || !/^https?:\/\/127\.0\.0\.1:\d+$/.test(gate))
          throw new LenscapError<ToolCode>(
            'ERR_START_GATE',
            `${c.serial} reported no loopback gate URL (state.gate = ${JSON.stringify(gate)})`,
          );
        c.gateUrl = gate;
        s.registerCamera({
          serial: c.serial,
          label: c.driver === 'v4l2' ? '/dev/video0' : `test pattern, ${c.color} label`,
          gateUrl: gate,
        });
      }
    });

    await step(
      'claim cameras: signed binding records via cloud `binding` command',
      async () => {
        for (const c of cameras) {
          try {
            await s.claim(c.serial, c.owner);
          } catch (err) {
            // A reused stack whose cameras are owner-held already: the cloud's binding no longer counts.
            if (!(err as Error).message.includes('ERR_BINDING_OWNER_HELD')) throw err;
          }
        }
      },
      () => cameras.map((c) => `${c.serial}→${c.owner}`).join(', '),
    );

    await step(
      "claim cameras with their label codes (owner-held: each owner's phone keys under dev/phones)",
      async () => {
        for (const c of cameras) {
          c.claimCode = readFileSync(join(c.stateDir, 'owner', 'claim-secret'), 'utf8').trim();
          const owner = loadOrCreatePhoneKeys(join(root, 'dev', 'phones'), c.owner);
          try {
            await claimWithCode(s.cloud.command.bind(s.cloud), {
              devDir: join(root, 'dev'),
              serial: c.serial,
              code: c.claimCode,
              owner,
            });
          } catch (err) {
            // Reused stack: claimed by the same phone before (its membership is on record).
            if (!isLenscapError(err, 'ERR_CLAIM_ALREADY_CLAIMED')) throw err;
          }
        }
      },
      () => cameras.map((c) => `${c.serial} code ${c.claimCode}`).join(', '),
    );

    await step(
      "turn motion events on (the owner's `events` command)",
      async () => {
        const hook = motionHookAvailable();
        for (const c of cameras) {
          const motionFile =
            c.driver === 'testpattern' && hook.ok ? stateLayout(c.stateDir).testPatternMotion : undefined;
          if (c.driver === 'testpattern' && !hook.ok) {
            c.events = { on: false, why: hook.why };
            continue;
          }
          const reply = await s.cloud.command(c.serial, 'events', { enabled: true }, 10_000);
          if (reply.status !== 'ok')
            throw new LenscapError<ToolCode>(
              'ERR_START_AGENT',
              `${c.serial} refused cmd/events: ${reply.error?.code ?? '?'} ${reply.error?.message ?? ''}`.trim(),
            );
          c.events = {
            on: true,
            why: motionFile ? hook.why : 'the camera',
            ...(motionFile ? { motionFile } : {}),
          };
          s.registerCamera({
            serial: c.serial,
            label: c.driver === 'v4l2' ? '/dev/video0' : `test pattern, ${c.color} label`,
            gateUrl: c.gateUrl,
            ...(motionFile ? { motionFile } : {}),
          });
        }
      },
      () => cameras.map((c) => `${c.serial} ${c.events?.on ? 'on' : `off (${c.events?.why})`}`).join(', '),
    );

    await step('check each gate answers (a request without a grant is refused)', async () => {
      for (const c of cameras) {
        const from = new Date().toISOString();
        const res = await fetch(`${c.gateUrl}/live/${c.serial}.flv`);
        await res.body?.cancel();
        // The page labels the refusal this causes as the stack's own check (not an attack).
        s.noteSelfCheck({ serial: c.serial, from, to: new Date().toISOString() });
        if (res.status !== 401 && res.status !== 403)
          throw new LenscapError<ToolCode>(
            'ERR_START_GATE',
            `${c.serial} gate answered ${res.status} without a grant`,
          );
      }
    });

    await step('write stack.json', async () => {
      const info = {
        startedAt: new Date().toISOString(),
        root,
        serials: cameras.map((c) => c.serial),
        pageUrl: s.pageUrl,
        brokerUrl: s.brokerUrl,
        brokerUrls: s.brokerUrls,
        brokerKind: s.brokerKind,
        provisioningUrl: s.provisioningUrl,
        relay: s.relayRtmpBase,
        objectStore: { url: s.objectStore.url, bucket: s.objectStore.bucket, caFile: s.objectStore.caFile },
        users: DEMO_USERS,
        cameras: cameras.map((c) => ({
          serial: c.serial,
          owner: c.owner,
          driver: c.driver,
          gateUrl: c.gateUrl,
          flvUrl: `${c.gateUrl}/live/${c.serial}.flv`,
          claimCode: c.claimCode,
          events: c.events?.on ?? false,
          ...(c.events?.motionFile ? { motionFile: c.events.motionFile } : {}),
          pid: c.child.pid,
          stateDir: c.stateDir,
          config: c.configPath,
          log: c.logPath,
        })),
        pids: {
          start: process.pid,
          agents: Object.fromEntries(cameras.map((c) => [c.serial, c.child.pid])),
          ...s.pids(),
        },
      };
      writeFileSync(stackFile, JSON.stringify(info, null, 2) + '\n');
    });

    const lines = [
      '',
      `lenscap is up. Open ${s.pageUrl} — pick "alice", click Watch, then "Replay the incident".`,
      `  cameras : ${cameras.map((c) => `${c.serial} (${c.driver}, owner ${c.owner}) gate ${c.gateUrl}`).join('\n            ')}`,
      `  claim   : ${cameras.map((c) => `${c.serial} label code ${c.claimCode}`).join('\n            ')}`,
      `  events  : ${cameras.map((c) => `${c.serial} ${c.events?.on ? `on (${c.events.why})` : `off (${c.events?.why})`}`).join(', ')}; the page's Events panel`,
      `  broker  : ${s.brokerUrl} (${s.brokerKind}, mTLS)   relay: ${s.relayRtmpBase}`,
      `  logs    : ${show(join(root, 'logs'))}/   stack: ${show(stackFile)}`,
      '  stop    : Ctrl-C (stops every agent, ffmpeg and server)',
      '',
    ];
    process.stdout.write(lines.join('\n'));
    if (values.open) openBrowser(s.pageUrl);
    await new Promise<void>(() => undefined); // until a signal
    return 0;
  } catch (err) {
    process.stderr.write(`${describeError(err)}\n`);
    await shutdown('start failed');
    return 1;
  }
}

function pagePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PAGE_PORT;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535)
    throw new LenscapError<ToolCode>('ERR_CLI_USAGE', `--port must be 0..65535, not ${JSON.stringify(text)}`);
  return n;
}

function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : 'xdg-open';
  const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => process.stdout.write(`(no browser opener found; open ${url} yourself)\n`));
  child.unref();
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${describeError(err)}\n`);
    process.exit(1);
  },
);
