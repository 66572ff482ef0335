#!/usr/bin/env node
// Runs every test file under test/ with node's built-in runner under tsx.
// Files are listed explicitly: on Node 20 a quoted glob does not expand and `--test DIR` finds no
// .ts files, so a pattern here would let tests be silently left out.
// Usage: node scripts/run-tests.mjs [--unit] [substring ...]  (filters files by path substring)
// test/arm/ (the QEMU board test: root, a VM, minutes) runs only when named: `npm run test:arm`.
// --unit (`npm run test:unit`): only the files in UNIT below, with harness/unit-guard.mjs
// preloaded so that a listed file which starts a program or opens a socket fails instead of
// quietly making the tier slow. `npm test` still runs every file (unit ones included) in one run.
// Each file gets a bound (LENSCAP_TEST_FILE_TIMEOUT_MS, default 10 min; 40 min for test/arm/): on Node 20 `--test-timeout`
// applies to every file's own test as well as to each test without its own `timeout`, so a file that
// hangs (an awaited event that never comes, a handle that keeps its process alive) fails by name
// instead of stalling the run.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
// The unit tier: no external program, no socket (not even loopback), no fetch; the whole list
// runs in well under a minute. A new test joins by being added here (the full suite runs it anyway).
const UNIT = [
  'test/agent/service-runner.test.ts',
  'test/audit/event-shape.test.ts',
  'test/audit/event-queue.test.ts',
  'test/cli/main.test.ts',
  'test/cloud/backoff.test.ts',
  'test/cloud/commands.test.ts',
  'test/cloud/fleet-profiles.test.ts',
  'test/cloud/storm-sim.test.ts',
  'test/config/load.test.ts',
  'test/config/migrate.test.ts',
  'test/docs/code-rooms.test.ts',
  'test/docs/code-tables.test.ts',
  'test/drivers/hardware.test.ts',
  'test/drivers/v4l2.test.ts',
  'test/grants/cli.test.ts',
  'test/grants/fuzz.test.ts',
  'test/grants/reasons.test.ts',
  'test/grants/state.test.ts',
  'test/grants/trust.test.ts',
  'test/identity/check.test.ts',
  'test/identity/install.test.ts',
  'test/owner/owner-trust.test.ts',
  'test/sealing/frames.test.ts',
  'test/stack/key-code.test.ts',
  'test/stream/rtmp-wire.test.ts',
  'test/ship/dockerfile.test.ts',
  'test/stream/ffmpeg-path.test.ts',
  'test/privacy/privacy-state.test.ts',
  'test/push/decision-context.test.ts',
  'test/sessions/table.test.ts',
  'test/telemetry/telemetry.test.ts',
];

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const filters = args.filter((a) => a !== '--unit');
const all = walk(join(root, 'test')).map((f) => relative(root, f));
if (unit) {
  const missing = UNIT.filter((f) => !all.includes(f));
  if (missing.length > 0) {
    console.error(
      `unit list names files that do not exist (moved? update scripts/run-tests.mjs): ${missing.join(', ')}`,
    );
    process.exit(1);
  }
}
const files = (unit ? UNIT : all)
  .filter((f) => (filters.length === 0 ? !f.startsWith('test/arm/') : filters.some((s) => f.includes(s))))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The QEMU board test boots and drives a VM under emulation: its own test allows 30 min.
const defaultFileTimeoutMs = files.some((f) => f.startsWith('test/arm/')) ? 40 * 60_000 : 10 * 60_000;
const fileTimeoutMs = Number(process.env.LENSCAP_TEST_FILE_TIMEOUT_MS ?? defaultFileTimeoutMs);
if (!Number.isInteger(fileTimeoutMs) || fileTimeoutMs <= 0) {
  console.error(`LENSCAP_TEST_FILE_TIMEOUT_MS must be a positive integer (ms), found ${fileTimeoutMs}`);
  process.exit(1);
}
console.error(`running ${files.length} test files (each bounded to ${fileTimeoutMs / 1000} s)`);
const res = spawnSync(
  process.execPath,
  [
    ...(unit ? ['--import', './harness/unit-guard.mjs'] : []),
    '--import',
    'tsx',
    '--test',
    '--test-reporter=tap',
    `--test-timeout=${fileTimeoutMs}`,
    `--test-concurrency=${process.env.LENSCAP_TEST_CONCURRENCY ?? 2}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, LENSCAP_TEST: '1' } },
);
process.exit(res.status ?? 1);
