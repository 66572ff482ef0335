/**
 * The default Runner for driver probes: execFile with a timeout, never a shell (device names come
 * from config and must not be interpreted). Must never leave the child running past its timeout.
 */
import { execFile } from 'node:child_process';
import type { Runner } from './types.ts';

/** For quick capability listings (`-encoders`, `-filters`); a device probe passes its own. */
export const DEFAULT_RUN_TIMEOUT_MS = 5000;

export const execRunner: Runner = (cmd, args, opts) =>
  new Promise((resolve) => {
    const timeout = opts?.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
    execFile(cmd, args, { timeout, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string }) | null;
      const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
      // execFile marks a child it killed for the timeout as `killed`; a crash has a signal only.
      const timedOut = Boolean(e?.killed);
      resolve({ code, out: `${stdout ?? ''}${stderr ?? ''}`, ...(timedOut ? { timedOut } : {}) });
    });
  });
