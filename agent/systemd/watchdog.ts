/**
 * Tells systemd the agent is alive: READY=1 at start, WATCHDOG=1 pings while it runs, STOPPING=1
 * on the way down. The unit sets WatchdogSec, so a hung agent (event loop stuck, process wedged) is
 * restarted by systemd. Talks to NOTIFY_SOCKET through the `systemd-notify` helper, because Node
 * cannot send on a unix datagram socket without a native addon and the bundle is pure JS.
 * Does nothing when not run by systemd (no NOTIFY_SOCKET), e.g. under the SysV script or in dev.
 * Must never throw into its caller nor block the event loop: a failed ping is logged, not fatal
 * (systemd's watchdog is the judge).
 */
import { execFile } from 'node:child_process';
import { systemClock, unrefTimer, type Timers, type TimerHandle } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { RunnerHealth } from '../service.ts';

export type NotifyExec = (file: string, args: string[], env: NodeJS.ProcessEnv) => Promise<void>;

export interface WatchdogDeps {
  logger: Logger;
  /** Defaults to process.env: NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID come from systemd. */
  env?: NodeJS.ProcessEnv;
  /** The helper binary; defaults to `systemd-notify` on PATH. */
  notifyBin?: string;
  /** Runs the helper; defaults to execFile with a 5 s timeout. */
  exec?: NotifyExec;
  /** The agent's pid (WATCHDOG_PID is compared with it); defaults to process.pid. */
  pid?: number;
  /**
   * The health of every running service (ServiceRunner.health): pings are withheld while any one
   * is not ok, so systemd restarts us.
   */
  health?: () => RunnerHealth;
  /** The ping interval and the READY=1 repeats run on it; defaults to the system clock. */
  clock?: Timers;
}

export interface Watchdog {
  /** True when systemd asked for notifications (NOTIFY_SOCKET set). */
  readonly enabled: boolean;
  /** Ping period in ms, or 0 when systemd set no watchdog. */
  readonly intervalMs: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One-line status for `systemctl status`. */
  status(text: string): Promise<void>;
}

const defaultExec: NotifyExec = (file, args, env) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 5000, windowsHide: true }, (err) => (err ? reject(err) : resolve()));
  });

/** Ping period from WATCHDOG_USEC: a quarter of it, so one or two lost datagrams are harmless. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return 0;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return 0;
  return Math.max(250, Math.floor(usec / 1000 / 4));
}

export function createWatchdog(deps: WatchdogDeps): Watchdog {
  const env = deps.env ?? process.env;
  const pid = deps.pid ?? process.pid;
  const bin = deps.notifyBin ?? 'systemd-notify';
  const exec = deps.exec ?? defaultExec;
  const clock = deps.clock ?? systemClock;
  const enabled = Boolean(env.NOTIFY_SOCKET);
  const intervalMs = enabled ? watchdogIntervalMs(env, pid) : 0;
  // The helper must see NOTIFY_SOCKET; nothing else of ours needs to reach it.
  const childEnv: NodeJS.ProcessEnv = { PATH: env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: env.NOTIFY_SOCKET };
  let timer: TimerHandle | undefined;
  let readyRetry: TimerHandle[] | undefined;
  let failures = 0;

  async function send(...assignments: string[]): Promise<boolean> {
    if (!enabled) return false;
    try {
      await exec(bin, assignments, childEnv);
      if (failures > 0)
        deps.logger.info({ code: 'WATCHDOG_NOTIFY_OK', after: failures }, 'systemd notify works again');
      failures = 0;
      return true;
    } catch (err) {
      failures += 1;
      // Log the first failure and then sparsely, so a missing helper does not flood the journal.
      if (failures === 1 || failures % 20 === 0) {
        deps.logger.warn(
          { code: 'WATCHDOG_NOTIFY_FAILED', failures, err: (err as Error).message },
          'systemd notify failed',
        );
      }
      return false;
    }
  }

  return {
    enabled,
    intervalMs,
    async start() {
      if (!enabled) return;
      await send('READY=1', 'STATUS=running');
      if (intervalMs > 0 && !timer) {
        timer = clock.setInterval(() => {
          let health: RunnerHealth;
          try {
            health = deps.health?.() ?? { ok: true, failing: [] };
          } catch (err) {
            // Fail closed: a health check that cannot answer is not a healthy agent.
            health = { ok: false, failing: [{ name: 'health', detail: (err as Error).message }] };
          }
          if (!health.ok) {
            deps.logger.warn(
              { code: 'WATCHDOG_WITHHELD', failing: health.failing },
              'unhealthy: withholding the watchdog ping',
            );
            return;
          }
          // READY=1 rides along: systemd 252 may drop a datagram whose helper exited before it was
          // read, and a lost READY=1 would fail a Type=notify start; repeating it is harmless.
          void send('WATCHDOG=1', 'READY=1');
        }, intervalMs);
        unrefTimer(timer);
      } else if (!readyRetry) {
        // No watchdog period to piggyback on: repeat READY=1 a few times for the same reason.
        readyRetry = [1000, 5000, 15000].map((ms) => {
          const t = clock.setTimeout(() => void send('READY=1'), ms);
          unrefTimer(t);
          return t;
        });
      }
      deps.logger.info({ code: 'WATCHDOG_STARTED', intervalMs }, 'systemd notify enabled');
    },
    async stop() {
      if (timer) clock.clearInterval(timer);
      timer = undefined;
      readyRetry?.forEach((t) => clock.clearTimeout(t));
      await send('STOPPING=1');
    },
    async status(text: string) {
      await send(`STATUS=${text.replace(/[\r\n]+/g, ' ').slice(0, 200)}`);
    },
  };
}
