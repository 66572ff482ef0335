/**
 * The stand-in ArtifactSink for a camera without the upload side: it logs each sealed artifact
 * (id, kind, size, hash: never a path query or key) and leaves the sealed file in the spool.
 * Must never delete or read the file (it only ever holds ciphertext anyway).
 */
import type { Logger } from '../log.ts';
import type { ArtifactSink } from './artifact.ts';

export function loggingSink(logger: Logger): ArtifactSink {
  return {
    enqueue: async (a) => {
      logger.info(
        { id: a.id, kind: a.kind, size: a.size, sha256: a.sha256, sealedTo: a.sealedTo.length },
        'sealed artifact kept in the spool (no upload sink)',
      );
    },
  };
}
