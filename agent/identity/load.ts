/**
 * The agent's entry to its identity: finish or discard an interrupted install, run the start
 * checks, and hand back the checked material with a renewer bound to it.
 * Must never return an identity that failed a check (the checks throw; the agent does not start).
 */
import type { EventSink } from '../audit/events.ts';
import type { Clock, Time } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { checkIdentity, type CheckedIdentity } from './check.ts';
import { recoverInstall } from './install.ts';
import { createRenewer, type Renewer } from './renew.ts';

export interface LoadedIdentity extends CheckedIdentity {
  /** What recovery did before the checks ('none' normally). */
  recovered: 'none' | 'finished' | 'discarded';
  createRenewer(deps: {
    config: Pick<Config, 'identity'>;
    clock: Time;
    logger: Logger;
    events: EventSink;
    onRenewed?: (id: CheckedIdentity) => void;
  }): Renewer;
}

export function loadIdentity(opts: {
  paths: StateLayout;
  expectedSerial?: string | undefined;
  clock: Clock;
}): LoadedIdentity {
  const recovered = recoverInstall(opts.paths.root);
  const id = checkIdentity(opts);
  return {
    ...id,
    recovered,
    createRenewer: (deps) => createRenewer({ ...deps, paths: opts.paths, serial: id.serial }),
  };
}
