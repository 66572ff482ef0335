/**
 * The local factory reset, wherever it comes from — the reset button (drivers/reset) or
 * `lenscap reset` (root; it leaves `owner/reset.request` in the state dir) — takes effect at once
 * on a running camera: owner and membership cleared, the cloud's binding dropped, every open
 * session cut, pushes stopped. A request left while the agent was down is carried out at start.
 * Must never be reachable from the network: only local inputs reset.
 */
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { systemClock, unrefTimer, type Timers } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import type { ResetInput } from '../../drivers/reset/types.ts';

export interface ResetDeps {
  paths: StateLayout;
  input: ResetInput;
  logger: Logger;
  /** Clears the owner, the binding, sessions and pushes (the controller wires it). */
  reset(source: string): void;
  pollMs?: number;
  /** The request poll runs on it (default: the system clock). */
  clock?: Timers;
}

/** What `lenscap reset` leaves for the running agent (or the next start). */
export function requestReset(paths: StateLayout, by: string): void {
  mkdirSync(paths.ownerDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(paths.resetRequest, JSON.stringify({ at: new Date().toISOString(), by }), 0o600);
}

export function startResetWatch(deps: ResetDeps): { check(): boolean; stop(): void } {
  const check = (): boolean => {
    if (!existsSync(deps.paths.resetRequest)) return false;
    deps.reset('local:lenscap-reset');
    try {
      unlinkSync(deps.paths.resetRequest);
    } catch {
      /* already gone: done either way */
    }
    return true;
  };
  const stopInput = deps.input.watch(() => deps.reset(`local:${deps.input.name}`));
  const clock = deps.clock ?? systemClock;
  const t = clock.setInterval(() => {
    try {
      check();
    } catch (err) {
      deps.logger.error({ err: (err as Error).message }, 'factory reset request could not be carried out');
    }
  }, deps.pollMs ?? 200);
  unrefTimer(t);
  return {
    check,
    stop: () => {
      clock.clearInterval(t);
      stopInput();
    },
  };
}
