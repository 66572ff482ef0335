/** Viewer key pairs for sealing tests: generated per run through @hpke/core, never stored. */
import { suiteFor, type KemName } from '../agent/sealing/suite.ts';
import type { ViewerHpkeKey } from '../agent/sealing/viewer-keys.ts';

export interface TestViewer {
  kid: string;
  keyPair: CryptoKeyPair;
  key: ViewerHpkeKey;
}

export async function makeViewer(kid: string, kem: KemName = 'X25519'): Promise<TestViewer> {
  const suite = await suiteFor(kem);
  const keyPair = await suite.kem.generateKeyPair();
  const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  return { kid, keyPair, key: { kid, publicKey: jwk } };
}
