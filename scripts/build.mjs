#!/usr/bin/env node
// `npm run build`: compiles the agent and drivers to dist/ with tsconfig.build.json (the device
// runs plain JS under node, no tsx), then stamps the build time into the compiled
// agent/grants/build-time.js — the grants clock check refuses to trust a wall clock earlier than
// the moment the firmware was built. Also writes dist/build-info.json (version, build time, commit).
// Last, esbuild bundles that stamped output (with its dependencies, whitespace- and syntax-minified,
// names kept) into dist/bundle/: what bin/lenscap.js runs on a device. Half of the agent's idle heap
// was module source text (one string per loaded file, ~850 files, 248 of them zod's); one minified
// bundle cuts idle RSS by 3.6–5.0 MB on x64 (docs/benchmarks.md). The tsc tree stays beside it: the
// board's diagnostic scripts import single modules from it, and it is readable in the field.
// Must never touch dist/*.tar.gz (bundles) nor anything outside dist/.
// Usage: node scripts/build.mjs [--build-time ISO] [--out-dir DIR] [--allow-type-errors]   (SOURCE_DATE_EPOCH is honoured too)
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = fileURLToPath(new URL('..', import.meta.url));

export function resolveBuildTime(argv = process.argv.slice(2), env = process.env) {
  const i = argv.indexOf('--build-time');
  if (i >= 0) {
    const ms = Date.parse(argv[i + 1] ?? '');
    if (!Number.isFinite(ms)) throw new Error(`--build-time: not a date: ${argv[i + 1]}`);
    return ms;
  }
  if (env.SOURCE_DATE_EPOCH && /^\d+$/.test(env.SOURCE_DATE_EPOCH))
    return Number(env.SOURCE_DATE_EPOCH) * 1000;
  return Date.now();
}

/**
 * Rewrites the compiled build-time module so its exported constant carries `ms`. The source file
 * (owned by the grants module) exports one numeric constant whose name contains BUILD; its
 * development value stays in the .ts file and only the compiled copy changes.
 * Returns the constant's name, or null when the module does not exist (yet).
 */
export function stampBuildTime(file, ms) {
  if (!existsSync(file)) return null;
  const src = readFileSync(file, 'utf8');
  const re = /export const (\w*BUILD\w*)\s*(?::\s*number\s*)?=\s*[^;\n]+;/i;
  const m = re.exec(src);
  if (!m) throw new Error(`${file}: found no exported BUILD* constant to stamp`);
  const out = src.replace(
    re,
    `export const ${m[1]} = ${ms}; // stamped by scripts/build.mjs: ${new Date(ms).toISOString()}`,
  );
  writeFileSync(file, out);
  return m[1];
}

/**
 * The entry points a device loads: the launcher's `main` and, for the benches' and board checks'
 * child (harness/fleet/agent-child.mjs), the controller, config schema and logger. With splitting,
 * an entry that main also imports dynamically is that same file, so nothing is duplicated.
 */
export const BUNDLE_ENTRIES = ['agent/main', 'agent/controller', 'agent/config/schema', 'agent/log'];

/**
 * Bundles the compiled (and already stamped) tree, so the bundle is exactly what tsc checked.
 * Packages loaded with createRequire at run time (node-media-server's internals, fluent-ffmpeg,
 * the optional pino-pretty and static ffmpeg) stay in node_modules, which the firmware carries.
 */
export function bundleAgent(dist) {
  const esbuild = createRequire(import.meta.url)('esbuild');
  const out = join(dist, 'bundle');
  rmSync(out, { recursive: true, force: true });
  const r = esbuild.buildSync({
    entryPoints: Object.fromEntries(BUNDLE_ENTRIES.map((e) => [e, join(dist, `${e}.js`)])),
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: 'chunks/[name]-[hash]',
    minifyWhitespace: true,
    minifySyntax: true,
    // Names stay: stack traces and pino's error serialisation must still say which function failed.
    keepNames: true,
    // The bundled CommonJS packages call require() for Node built-ins; ESM has none of its own.
    banner: {
      js: "import{createRequire as __lenscapRequire}from'node:module';const require=__lenscapRequire(import.meta.url);",
    },
    // The compiled tree may live outside the checkout (the bundle step stages it in a temp dir).
    nodePaths: [join(root, 'node_modules')],
    logLevel: 'silent',
  });
  const problems = [...r.errors, ...r.warnings].map((m) => `${m.location?.file ?? ''}: ${m.text}`);
  // A warning here is a require() esbuild could not follow: it would fail on the device, not here.
  if (problems.length > 0) throw new Error(`esbuild: ${problems.join('; ')}`);
}

function gitCommit() {
  const r = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

export function build({
  buildTimeMs = resolveBuildTime(),
  quiet = false,
  allowTypeErrors = false,
  outDir = join(root, 'dist'),
} = {}) {
  const t0 = Date.now();
  const dist = outDir;
  for (const dir of ['agent', 'drivers', 'scripts', 'bin'])
    rmSync(join(dist, dir), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dist], {
    cwd: root,
    stdio: 'inherit',
  });
  // tsc still emits on type errors; a shipping build refuses them unless told otherwise
  // (--allow-type-errors, for trying a bundle while the tree is mid-change).
  if (r.status !== 0 && !(allowTypeErrors && existsSync(join(dist, 'agent', 'main.js'))))
    throw new Error(`tsc failed (exit ${r.status})`);
  const stamped = stampBuildTime(join(dist, 'agent', 'grants', 'build-time.js'), buildTimeMs);
  bundleAgent(dist);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const info = {
    name: pkg.name,
    version: pkg.version,
    builtAt: new Date(buildTimeMs).toISOString(),
    buildTimeMs,
    commit: gitCommit(),
    node: pkg.engines?.node ?? null,
  };
  writeFileSync(join(dist, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
  if (!quiet) {
    console.error(
      `built ${pkg.name} ${pkg.version} into ${dist} in ${Date.now() - t0} ms (build time ${info.builtAt}${stamped ? `, stamped ${stamped}` : ', no agent/grants/build-time.ts yet'})`,
    );
  }
  return info;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const argv = process.argv.slice(2);
    const o = argv.indexOf('--out-dir');
    build({
      allowTypeErrors: argv.includes('--allow-type-errors'),
      ...(o >= 0 && argv[o + 1] ? { outDir: argv[o + 1] } : {}),
    });
  } catch (err) {
    console.error(`build failed: ${err.message}`);
    process.exit(1);
  }
}
