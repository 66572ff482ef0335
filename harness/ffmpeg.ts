/**
 * ffmpeg for tests, found exactly the way the agent finds it: the agent's own resolver
 * (agent/stream/ffmpeg-path.ts: config → FFMPEG_PATH → `ffmpeg` on PATH → @ffmpeg-installer/ffmpeg).
 * On a machine with only Node 20 that is the packaged static ffmpeg (4.1), so every test that runs
 * ffmpeg runs there too; a test that needs something this ffmpeg lacks skips by name saying what.
 * Must never: name a bare `ffmpeg` or a fixed path, or let a test run a different ffmpeg than the agent.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolveFfmpegPath, type FfmpegResolution } from '../agent/stream/ffmpeg-path.ts';

let resolved: FfmpegResolution | undefined;

/** The ffmpeg the agent would run here (no config file: FFMPEG_PATH, PATH, then the package). */
export function testFfmpeg(): FfmpegResolution {
  resolved ??= resolveFfmpegPath();
  return resolved;
}

/** Path of {@link testFfmpeg}. */
export function ffmpegPath(): string {
  return testFfmpeg().path;
}

const listings = new Map<string, string>();
function listing(what: '-filters' | '-encoders'): string {
  let out = listings.get(what);
  if (out === undefined) {
    out = execFileSync(ffmpegPath(), ['-hide_banner', what], { encoding: 'utf8', timeout: 15_000 });
    listings.set(what, out);
  }
  return out;
}

export function ffmpegHasFilter(name: string): boolean {
  return new RegExp(`^\\s*\\S+\\s+${name}\\s`, 'm').test(listing('-filters'));
}

export function ffmpegHasEncoder(name: string): boolean {
  return new RegExp(`^\\s*\\S+\\s+${name}\\s`, 'm').test(listing('-encoders'));
}

/** The DejaVu font the test pattern's overlay uses (drivers/camera/testpattern.ts looks for it). */
export const DEJAVU_FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

/**
 * node:test options that skip when `have` is false, naming the feature and the ffmpeg in use;
 * under LENSCAP_TEST_REQUIRE_ALL=1 (CI's full pass) a missing feature fails instead.
 */
export function needsFfmpeg(feature: string, have: boolean): { skip?: string } {
  if (have) return {};
  const f = testFfmpeg();
  const why = `needs ${feature} (ffmpeg from ${f.source}: ${f.path} lacks it)`;
  if (process.env.LENSCAP_TEST_REQUIRE_ALL === '1')
    throw new Error(`${why}; required (LENSCAP_TEST_REQUIRE_ALL=1)`);
  return { skip: why };
}

/** The drawtext overlay needs both the filter and a font file (fonts-dejavu-core). */
export function needsDrawtext(): { skip?: string } {
  if (!ffmpegHasFilter('drawtext')) return needsFfmpeg('the drawtext filter', false);
  if (existsSync(DEJAVU_FONT)) return {};
  const why = `needs the DejaVu font for drawtext (${DEJAVU_FONT}: apt-get install fonts-dejavu-core)`;
  if (process.env.LENSCAP_TEST_REQUIRE_ALL === '1')
    throw new Error(`${why}; required (LENSCAP_TEST_REQUIRE_ALL=1)`);
  return { skip: why };
}
