/** Sealed-artifact fixtures for the upload tests: real files in a spool dir, records that match them. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SealedArtifact } from '../../agent/events/artifact.ts';

let n = 0;

export function writeArtifact(
  spoolDir: string,
  opts: { serial: string; kind: 'clip' | 'snapshot'; size: number; eventId?: string; startedAt?: number },
): SealedArtifact {
  mkdirSync(spoolDir, { recursive: true });
  const eventId = opts.eventId ?? `ev${Date.now().toString(36)}${(n++).toString(36)}`;
  const id = `${opts.serial}-${eventId}-${opts.kind === 'clip' ? 'clip' : 'snap'}`;
  const bytes = randomBytes(opts.size);
  const path = join(spoolDir, `${id}.sealed`);
  writeFileSync(path, bytes);
  return {
    v: 1,
    id,
    eventId,
    kind: opts.kind,
    serial: opts.serial,
    startedAt: opts.startedAt ?? Date.now(),
    durationMs: opts.kind === 'clip' ? 4000 : 0,
    size: opts.size,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    contentType: opts.kind === 'clip' ? 'video/mp4' : 'image/jpeg',
    sealedTo: ['kid-alice'],
    membershipVersion: 1,
    path,
  };
}
