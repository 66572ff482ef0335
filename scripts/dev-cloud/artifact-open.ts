/**
 * The viewer page's artifact opener (bundled for the browser by page-events-api.ts with esbuild):
 * exactly the agent's `openArtifact` (agent/sealing/artifact.ts, WebCrypto and @hpke/core only), so
 * the page opens a sealed snapshot or clip with the user's own key pair from IndexedDB.
 * Must never export the private key (it only passes the CryptoKey handle on) nor hand back
 * plaintext that did not authenticate.
 */
import { openArtifact, parseArtifact } from '../../agent/sealing/artifact.ts';

(globalThis as unknown as { lenscapArtifacts: unknown }).lenscapArtifacts = {
  openArtifact,
  /** The recipients' key ids, read without opening (what the page shows before it tries). */
  kidsOf(bytes: Uint8Array): string[] {
    return parseArtifact(bytes).kids;
  },
};
