/**
 * Serves the sealed viewer page: `/sealed.html`, `/sealed.js`, `/keys.js` (the user's keys in
 * IndexedDB, shared with the main page) and `/sealed-worker.js` (the
 * Worker, bundled once from sealed-worker.ts with esbuild — tsx's own dependency — so the page
 * runs exactly the agent's FrameOpener and @hpke/core). Dev cloud only.
 * Must never serve anything but these four files.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
let bundle: string | undefined;

export function sealedWorkerBundle(): string {
  bundle ??= buildSync({
    entryPoints: [join(HERE, 'sealed-worker.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  }).outputFiles[0]!.text;
  return bundle;
}

/** Answers the page's own paths; returns false for anything else. */
export function serveSealedPage(path: string, res: http.ServerResponse): boolean {
  const files: Record<string, [string, () => string]> = {
    '/sealed.html': [
      'text/html; charset=utf-8',
      () => readFileSync(join(HERE, 'web', 'sealed.html'), 'utf8'),
    ],
    '/sealed.js': [
      'text/javascript; charset=utf-8',
      () => readFileSync(join(HERE, 'web', 'sealed.js'), 'utf8'),
    ],
    '/keys.js': ['text/javascript; charset=utf-8', () => readFileSync(join(HERE, 'web', 'keys.js'), 'utf8')],
    '/sealed-worker.js': ['text/javascript; charset=utf-8', sealedWorkerBundle],
  };
  const f = files[path];
  if (!f) return false;
  const body = f[1]();
  res.writeHead(200, {
    'content-type': f[0],
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
  return true;
}
