/**
 * Tests that need a program the machine may lack (mosquitto, chromium, nginx, …) skip themselves by
 * name when it is missing, except under CI (LENSCAP_TEST_REQUIRE_ALL=1), where a missing program fails
 * the run instead of hiding behind a skip. ffmpeg is not looked up here: harness/ffmpeg.ts finds
 * it the way the agent does.
 * Must never: look outside PATH (no fixed /usr/bin fallbacks): CI's Node-only pass hides programs
 * by PATH, and a lookup that goes around it would run tests that a Node-only machine cannot.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

/**
 * Where PATH lookup goes: each PATH entry, and for an entry ending in `/bin` its `sbin` sibling
 * (Debian puts mosquitto and nginx in /usr/sbin, which a normal user's PATH leaves out).
 */
export function searchDirs(path = process.env.PATH ?? ''): string[] {
  const dirs: string[] = [];
  for (const d of path.split(delimiter)) {
    if (!d) continue;
    dirs.push(d);
    if (/(^|\/)bin\/?$/.test(d)) dirs.push(join(dirname(d), 'sbin'));
  }
  return [...new Set(dirs)];
}

/** The executable `name` on PATH (see {@link searchDirs}), or undefined. */
export function findBinary(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const d of searchDirs(path)) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * The program a test runs for `name`: `<NAME>_PATH` from the environment when set (CHROMIUM_PATH,
 * MOSQUITTO_PATH, …, like the agent's FFMPEG_PATH), else {@link findBinary}.
 */
export function programPath(name: string): string | undefined {
  const override = process.env[`${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PATH`];
  if (override) {
    try {
      accessSync(override, constants.X_OK);
      return override;
    } catch {
      return undefined;
    }
  }
  return findBinary(name);
}

/** Returns `{ skip: "needs X" }` for node:test options when X is absent (and not required). */
export function needs(name: string): { skip?: string } {
  if (name === 'ffmpeg')
    throw new Error("ffmpeg is not looked up on PATH in tests: use harness/ffmpeg.ts (the agent's resolver)");
  if (programPath(name)) return {};
  if (process.env.LENSCAP_TEST_REQUIRE_ALL === '1') {
    throw new Error(`${name} is required (LENSCAP_TEST_REQUIRE_ALL=1) but not on PATH`);
  }
  return { skip: `needs ${name} (not on PATH)` };
}
