/**
 * Motion detection cost (issue 16): the real stream service (test pattern 640x360@15 through real
 * ffmpeg into the real in-process hub, capture held up) measured twice in the same run, N seconds
 * each: the baseline with events off, then events on with a still picture (analysis ffmpeg at
 * 5 frames/s of 64x48 gray + the detector + the pre-roll ring). Cost = the agent process's extra
 * CPU + the analysis ffmpeg's CPU, as % of one core (from process.cpuUsage and /proc). Then one
 * motion event (the test pattern's motion hook): trigger → snapshot sealed, motion end → clip sealed.
 * Goal: detection ≤ 5 % of one core at 5 analysed frames/s.
 * Usage: npx tsx bench/motion.ts [--json FILE] [--seconds 20]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../agent/clock.ts';
import { configSchema } from '../agent/config/schema.ts';
import type { SealedArtifact } from '../agent/events/artifact.ts';
import { createEventsService } from '../agent/events/service.ts';
import { silentLogger } from '../agent/log.ts';
import { suiteFor } from '../agent/sealing/suite.ts';
import { createPrivacyState } from '../agent/privacy/state.ts';
import { createStreamService } from '../agent/stream/service.ts';
import { createTestPatternDriver, setTestPatternMotion } from '../drivers/camera/testpattern.ts';
import { createNoSwitch } from '../drivers/privacy/none.ts';
import { makeTempDir } from '../harness/tmp.ts';
import { writeFigures } from './_json.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '20' }, json: { type: 'string' } },
});
const STARTED = Date.now();
const SECONDS = Number(values.seconds);
const TICK = 100; // USER_HZ
const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procCpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
  } catch {
    return 0;
  }
}
const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function window(seconds: number, pids: () => Array<number | undefined>) {
  const t0 = performance.now();
  const s0 = selfCpuMs();
  const p0 = pids().map(procCpuMs);
  await sleep(seconds * 1000);
  const wall = performance.now() - t0;
  const p1 = pids().map(procCpuMs);
  return {
    selfPct: ((selfCpuMs() - s0) / wall) * 100,
    procPct: p1.map((v, i) => ((v - p0[i]!) / wall) * 100),
  };
}

const { dir, cleanup } = makeTempDir('lenscap-bench-motion-');
const config = configSchema.parse({});
const logger = silentLogger();
const motionFile = join(dir, 'motion');
const privacy = createPrivacyState({
  initial: false,
  hardware: createNoSwitch(),
  serial: 'BENCH-1',
  clock: systemClock,
  logger,
});
const stream = createStreamService({
  serial: 'BENCH-1',
  stream: { ...config.stream, mode: 'always' },
  camera: config.camera,
  logger,
  privacy,
  cameraDriver: createTestPatternDriver({ hasDrawtext: true, fontFile: FONT, motionFile }),
});
await stream.start();
const kp = await (await suiteFor('X25519')).kem.generateKeyPair();
const pub = await crypto.subtle.exportKey('jwk', kp.publicKey);
const got: Array<SealedArtifact & { at: number }> = [];
const events = createEventsService({
  serial: 'BENCH-1',
  config: { ...config.events, enabled: false, postRollSeconds: 1, cooldownSeconds: 1 },
  fps: config.camera.fps,
  spoolDir: join(dir, 'spool'),
  clock: systemClock,
  logger,
  stream,
  privacy,
  membership: () => ({ version: 1, keys: [{ kid: 'bench', publicKey: pub }] }),
  sink: { enqueue: async (a) => void got.push({ ...a, at: Date.now() }) },
});
events.start();
const capturePid = () => stream.capturePid();
await sleep(4000); // capture warm
const base = await window(SECONDS, () => [capturePid()]);
process.stdout.write(
  `baseline (events off): agent ${base.selfPct.toFixed(2)} %, capture ffmpeg ${base.procPct[0]!.toFixed(1)} % of one core\n`,
);
events.setEnabled(true, 'bench');
await sleep(4000); // ring and analysis warm
const framesBefore = events.status().analysis.frames;
const t0 = performance.now();
const on = await window(SECONDS, () => [capturePid(), events.status().analysis.pid ?? undefined]);
const analysedFps = (events.status().analysis.frames - framesBefore) / ((performance.now() - t0) / 1000);
const agentExtra = on.selfPct - base.selfPct;
const analysisPct = on.procPct[1]!;
const detectionPct = Math.max(0, agentExtra) + analysisPct;
const ring = events.status().ring;
process.stdout.write(
  `events on (still picture): agent ${on.selfPct.toFixed(2)} % (+${agentExtra.toFixed(2)}), analysis ffmpeg ${analysisPct.toFixed(2)} %, ${analysedFps.toFixed(2)} frames/s analysed\n`,
);
process.stdout.write(
  `detection cost: ${detectionPct.toFixed(2)} % of one core (goal ≤ 5 %: ${detectionPct <= 5 ? 'met' : 'NOT met'}); ring ${ring.bytes} bytes over ${ring.spanMs} ms (cap ${ring.maxBytes})\n`,
);

// One event: motion on → snapshot sealed; motion off → clip sealed after the post-roll.
const tMotion = Date.now();
setTestPatternMotion(motionFile, true);
while (events.status().counters.events === 0 && Date.now() - tMotion < 15_000) await sleep(20);
const tTrigger = Date.now();
while (!got.some((a) => a.kind === 'snapshot') && Date.now() - tMotion < 20_000) await sleep(20);
const snap = got.find((a) => a.kind === 'snapshot');
await sleep(2000);
const tOff = Date.now();
setTestPatternMotion(motionFile, false);
while (!got.some((a) => a.kind === 'clip') && Date.now() - tOff < 30_000) await sleep(20);
const clip = got.find((a) => a.kind === 'clip');
const triggerMs = tTrigger - tMotion;
const snapshotMs = snap ? snap.at - tTrigger : NaN;
const clipMs = clip ? clip.at - tOff : NaN;
process.stdout.write(
  `motion → trigger ${triggerMs} ms; trigger → snapshot sealed ${snapshotMs} ms (${snap?.size ?? 0} B); motion end → clip sealed ${clipMs} ms (post-roll 1 s; clip ${clip?.durationMs ?? 0} ms, ${clip?.size ?? 0} B)\n`,
);
await events.stop();
await stream.stop();
cleanup();
writeFigures(values.json, 'motion', STARTED, {
  seconds: SECONDS,
  baselineAgentPct: base.selfPct,
  baselineCapturePct: base.procPct[0]!,
  agentExtraPct: agentExtra,
  analysisFfmpegPct: analysisPct,
  detectionPctOfOneCore: detectionPct,
  goalPct: 5,
  goalMet: detectionPct <= 5,
  analysedFps,
  ringBytes: ring.bytes,
  ringSpanMs: ring.spanMs,
  motionToTriggerMs: triggerMs,
  triggerToSnapshotSealedMs: snapshotMs,
  motionEndToClipSealedMs: clipMs,
  clipDurationMs: clip?.durationMs ?? null,
  clipBytes: clip?.size ?? null,
});
process.exit(0);
