/**
 * Tests that need a program the machine may lack (mosquitto, chromium) skip themselves by name
 * when it is missing, except under CI (LENSCAP_TEST_REQUIRE_ALL=1), where a missing program fails
 * the run instead of hiding behind a skip.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export function findBinary(name: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', ...extra];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Returns `{ skip: "needs X" }` for node:test options when X is absent (and not required). */
export function needs(name: string): { skip?: string } {
  if (findBinary(name)) return {};
  if (process.env.LENSCAP_TEST_REQUIRE_ALL === '1') {
    throw new Error(`${name} is required (LENSCAP_TEST_REQUIRE_ALL=1) but not installed`);
  }
  return { skip: `needs ${name} (not installed)` };
}
