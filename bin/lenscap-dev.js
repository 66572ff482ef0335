#!/usr/bin/env node
// Development-only launcher: runs scripts/dev-cloud/cli.ts (the dev cloud and its verbs) through
// tsx. Only a source checkout has it; a device bundle carries neither this file nor scripts/.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { register } = await import('tsx/esm/api');
register();
const mod = await import(pathToFileURL(join(root, 'scripts', 'dev-cloud', 'cli.ts')).href);
process.exitCode = await mod.main(process.argv.slice(2));
