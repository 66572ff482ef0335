/**
 * The queue's file-system probes on the real disk: free space by statfs (what an unprivileged
 * writer may still use), file sizes, and removal. Must never throw: a probe that fails answers
 * "unknown" (undefined), and removing a file that is already gone is fine.
 */
import { rmSync, statSync, statfsSync } from 'node:fs';
import type { UploadFs } from './queue.ts';

export const nodeUploadFs: UploadFs = {
  freeBytes(dir) {
    try {
      const s = statfsSync(dir);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return undefined;
    }
  },
  fileSize(path) {
    try {
      const s = statSync(path);
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  },
  remove(path) {
    try {
      rmSync(path, { force: true });
    } catch {
      /* a directory or no permission: left for the operator, never a crash */
    }
  },
};
