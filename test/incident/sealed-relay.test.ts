/**
 * The incident replay's sealed-push phase, small: a faulty relay hands one of two sealed pushes to
 * the wrong viewer. That viewer opens 0 frames, a plain ffmpeg decodes 0 frames of the relay-side
 * capture, and the bound viewer does open frames (the proof is not vacuous).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSealedRelayIncident } from '../../harness/incident/seal.ts';

test(
  'sealed pushes through a misrouting relay: 0 frames to the wrong viewer, 0 decodable at the relay',
  { timeout: 120_000 },
  async () => {
    const r = await runSealedRelayIncident({ pushes: 2, misroute: 0.5, framesPerPush: 15 });
    assert.equal(r.misroutedSealedPushes, 1);
    assert.equal(r.framesDecodedByWrongViewer, 0);
    assert.ok(r.sealedFramesPlayedByBoundViewer > 0, JSON.stringify(r));
    assert.ok(r.relayFramesCaptured > 0);
    assert.equal(r.relayFramesDecodable, 0);
  },
);
