#!/usr/bin/env node
// Launcher. In a source checkout (agent/main.ts present) it runs the TypeScript through tsx, so a
// stale dist/ can never shadow the code being worked on; in a device bundle (compiled JS only,
// no .ts, no tsx) it runs the esbuild bundle in dist/bundle/ (smaller at idle: scripts/build.mjs),
// or the plain tsc tree in dist/agent/ when a build carries no bundle.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

// A reader that goes away (`lenscap --help | head -1`) ends lenscap quietly with 141, as SIGPIPE
// ends a C tool (and a supervised `run` whose stdout vanished exits non-zero, so it is restarted).
// Node ignores SIGPIPE and would otherwise crash on the unhandled EPIPE with a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(141);
  throw err;
});

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'agent', 'main.ts');
let mod;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(pathToFileURL(source).href);
} else {
  const bundled = join(root, 'dist', 'bundle', 'agent', 'main.js');
  const entry = existsSync(bundled) ? bundled : join(root, 'dist', 'agent', 'main.js');
  mod = await import(pathToFileURL(entry).href);
}
process.exitCode = await mod.main(process.argv.slice(2));
