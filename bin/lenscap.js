#!/usr/bin/env node
// Launcher. In a source checkout (agent/main.ts present) it runs the TypeScript through tsx, so a
// stale dist/ can never shadow the code being worked on; in a device bundle (compiled JS only,
// no .ts, no tsx) it runs dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'agent', 'main.ts');
let mod;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(pathToFileURL(source).href);
} else {
  mod = await import(pathToFileURL(join(root, 'dist', 'agent', 'main.js')).href);
}
process.exitCode = await mod.main(process.argv.slice(2));
