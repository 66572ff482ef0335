/**
 * The incident replay's sealed-push phase: one camera (real capture, real hub, real grants) pushes
 * sealed to the dev relay (node-media-server, own process) for alternating bound viewers (alice,
 * bob — each with their own key in the membership); the faulty relay hands a share of the pushes to
 * the other viewer; everything the relay served is also captured and handed to a plain ffmpeg with
 * no key. Figures:
 * - misroutedSealedPushes: pushes the relay handed to the wrong viewer;
 * - framesDecodedByWrongViewer: frames those viewers opened (authenticated plaintext) — goal 0;
 * - sealedFramesPlayedByBoundViewer: frames the right viewers opened — > 0, so the proof is not vacuous;
 * - relayFramesCaptured: coded video frames in the relay-side capture;
 * - relayFramesDecodable: frames of that capture a plain decoder turns into picture (docs/incident.md:
 *   luma standard deviation at 64x36 above 4; concealed sealed frames are flat, ≈ 0) — goal 0.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeMediaFixture } from '../media-fixture.ts';
import { createPushService } from '../../agent/push/push.ts';
import { silentLogger } from '../../agent/log.ts';
import { mapViewerKeys } from '../../agent/sealing/viewer-keys.ts';
import { FrameOpener } from '../../agent/sealing/opener.ts';
import { isSealableVideo, parseSealedBody } from '../../agent/sealing/frame.ts';
import { parseEnvelope } from '../../agent/sealing/envelope.ts';
import type { FlvTagOut } from '../../agent/sealing/flv-tags.ts';
import { decodeLumaStddev, flvFile, pullHttpFlv } from '../sealed-pull.ts';
import { makeViewer } from '../viewer-keys.ts';
import { holdFor, reached } from '../wait.ts';

export interface SealedIncident {
  sealedPushes: number;
  misroutedSealedPushes: number;
  framesDecodedByWrongViewer: number;
  sealedFramesPlayedByBoundViewer: number;
  relayFramesCaptured: number;
  relayFramesDecodable: number;
}

/** Coded frames of one sealed session (hex id): from a keyframe whose envelope names it, until one that does not. */
function thisSession(video: Buffer[], session: string): Buffer[] {
  const out: Buffer[] = [];
  let inside = false;
  for (const b of video) {
    if (!isSealableVideo(b)) continue;
    try {
      const p = parseSealedBody(b);
      if (p.envelope) inside = Buffer.from(parseEnvelope(p.envelope).sessionId).toString('hex') === session;
    } catch {
      inside = false;
    }
    if (inside) out.push(b);
  }
  return out;
}

export async function runSealedRelayIncident(o: {
  pushes: number;
  misroute: number;
  /** Video frames to take from the relay per push (default 30; bounded at 30 s per push). */
  framesPerPush?: number;
  log?: (l: string) => void;
}): Promise<SealedIncident> {
  const m = await makeMediaFixture({ mode: 'on-demand', idleStopSeconds: 5 });
  const relay = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../relay-child.ts', import.meta.url))],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    const lines = createInterface({ input: relay.stdout! });
    const urls = await new Promise<{ rtmpBase: string; httpBase: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('relay child not ready in 60 s')), 60_000);
      lines.on('line', (l) => {
        const j = JSON.parse(l) as { ready?: boolean; rtmpBase: string; httpBase: string };
        if (j.ready) {
          clearTimeout(t);
          resolve(j);
        }
      });
    });
    const viewers = { alice: await makeViewer('alice#1'), bob: await makeViewer('bob#1') };
    const push = createPushService({
      serial: 'CAM-0001',
      grants: m.f.gate,
      stream: m.stream,
      ffmpegPath: m.stream.ffmpegPath,
      relayAllowList: [],
      clock: m.f.clock,
      logger: silentLogger(),
      viewerKeys: mapViewerKeys({ alice: viewers.alice.key, bob: viewers.bob.key }),
    });
    const r: SealedIncident = {
      sealedPushes: 0,
      misroutedSealedPushes: 0,
      framesDecodedByWrongViewer: 0,
      sealedFramesPlayedByBoundViewer: 0,
      relayFramesCaptured: 0,
      relayFramesDecodable: 0,
    };
    const capture: FlvTagOut[][] = [];
    const misrouteEvery = o.misroute > 0 ? Math.max(1, Math.round(1 / o.misroute)) : Infinity;
    for (let i = 0; i < o.pushes; i++) {
      const bound = i % 2 === 0 ? 'alice' : 'bob';
      const misrouted = (i + 1) % misrouteEvery === 0;
      const receiver = misrouted ? (bound === 'alice' ? 'bob' : 'alice') : bound;
      const s = await push.start(m.f.mint({ viewer: bound, relay: `${urls.rtmpBase}/CAM-0001` }));
      if (!s.ok) throw new Error(`sealed push refused: ${s.reason}`);
      const session = push.active().find((a) => a.jti === s.jti)!.sealedSession;
      // Pull until the relay serves this push: a pull that comes before the publish gets
      // nothing, so retry it; then take `framesPerPush` frames (bounded, loaded machines are slow).
      const deadline = Date.now() + 30_000;
      let pulled = pullHttpFlv(`${urls.httpBase}/live/CAM-0001.flv`);
      while (!(await pulled.waitFor(1, 3000)) && Date.now() < deadline) {
        pulled.close();
        pulled = pullHttpFlv(`${urls.httpBase}/live/CAM-0001.flv`);
      }
      await reached(
        () => thisSession(pulled.video, session).length >= (o.framesPerPush ?? 30),
        Math.max(0, deadline - Date.now()),
      );
      pulled.close();
      await push.stop(s.jti);
      r.sealedPushes++;
      if (misrouted) r.misroutedSealedPushes++;
      const opener = new FrameOpener({ serial: 'CAM-0001', keyPair: viewers[receiver].keyPair });
      // Only this push's frames: node-media-server resumes a publish from the same address within
      // 30 s and serves the previous push's cached GOP first — frames sealed to the previous
      // viewer, not part of this (possibly misrouted) push. The session id is clear at keyframes.
      const mine = thisSession(pulled.video, session);
      let opened = 0;
      for (const b of mine) if ((await opener.open(b)).ok) opened++;
      if (misrouted) r.framesDecodedByWrongViewer += opened;
      else r.sealedFramesPlayedByBoundViewer += opened;
      r.relayFramesCaptured += mine.length;
      capture.push(pulled.tags.filter((t) => t.type === 9));
      o.log?.(
        `sealed push ${i + 1}/${o.pushes}: for ${bound}, handed to ${receiver}: ${opened} frames opened`,
      );
      await holdFor(500, 'the relay sees this publish end before the next push');
    }
    for (const tags of capture) {
      const detail = await decodeLumaStddev(flvFile(tags), m.stream.ffmpegPath);
      r.relayFramesDecodable += detail.filter((x) => x > 4).length;
    }
    await push.close();
    return r;
  } finally {
    relay.stdin?.end();
    await reached(() => relay.exitCode !== null || relay.signalCode !== null, 3000);
    relay.kill('SIGKILL');
    await m.close();
  }
}
