/**
 * The default Runner for driver probes: execFile with a short timeout, never a shell (device
 * names come from config and must not be interpreted).
 */
import { execFile } from 'node:child_process';
import type { Runner } from './types.ts';

export const execRunner: Runner = (cmd, args) =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number'
          ? (err as unknown as { code: number }).code
          : null
        : 0;
      resolve({ code, out: `${stdout ?? ''}${stderr ?? ''}` });
    });
  });
