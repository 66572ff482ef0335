/**
 * `npm run bundle -- --arch arm64|armhf|x64 [--pin DIR]`: the firmware payload for one board architecture,
 * dist/lenscap-<version>-linux-<arch>.tar.gz, holding the compiled agent (dist/), production
 * node_modules only, the service files, the default config, the installer and a manifest with
 * sha256 sums (MANIFEST.json + SHA256SUMS, which install-on-device.sh checks).
 *
 * The dependency tree must be pure JS so one build serves every arch: the bundle is refused when a
 * `.node` addon or any native executable (ELF, Mach-O, PE) sneaks in, and when a compiled file
 * imports something the bundle does not carry. The optional @ffmpeg-installer binary is left out
 * (boards use the distro ffmpeg with their hardware encoder).
 * Must never ship development-only code (scripts/, the dev cloud verbs), tests, or any key.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LenscapError } from '../agent/errors.ts';
import { loadPins, PIN_FILES, pinDirProblems } from '../agent/identity/pins.ts';
import type { ToolCode } from './dev-codes.ts';

export const ARCHES = {
  arm64: { elfMachine: 183, label: 'aarch64' },
  armhf: { elfMachine: 40, label: 'arm (32-bit)' },
  x64: { elfMachine: 62, label: 'x86-64' },
} as const;
export type BundleArch = keyof typeof ARCHES;

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Packages never shipped: the optional static ffmpeg (and its per-platform binaries), typings. */
const EXCLUDED_PACKAGES = [/^@ffmpeg-installer\//, /^@types\//];
/** Files inside packages that only cost space on a board. */
const DROPPED_FILES = /(\.ts|\.mts|\.cts|\.map|\.md|\.markdown|\.tsbuildinfo)$/i; // Node 20 runs no .ts
const DROPPED_DIRS = new Set(['.github', '.vscode', '.idea', '.nyc_output', 'coverage']);
/**
 * Whole subtrees Node never loads on the board: mqtt's browser bundles (Node resolves build/), and
 * node-media-server's admin console, which it serves only when the files exist — so the device
 * cannot expose an admin UI even if a hub port were misconfigured.
 */
const DROPPED_SUBTREES = ['node_modules/mqtt/dist', 'node_modules/node-media-server/webadmin'];
/**
 * Development-only code in the compiled tree. The device build compiles agent/ and drivers/ only,
 * and device code never imports scripts/, so nothing should match: a match means an import crept
 * in, and the bundle is refused (never quietly pruned).
 */
const DEV_ONLY_DIST = /^dist\/(scripts|test|bench)\//;
const EXECUTABLES = new Set(['bin/lenscap.js', 'install-on-device.sh', 'packaging/lenscap.init']);

export interface BundleOptions {
  arch: BundleArch;
  outDir?: string;
  root?: string;
  /** Build time stamped into the agent (ms); defaults to now. */
  buildTimeMs?: number;
  log?: (line: string) => void;
  /** Bundle even when tsc reports type errors (trying a bundle mid-change; never for release). */
  allowTypeErrors?: boolean;
  /**
   * A folder of public pins (certs/README.md: trust-root.jwk.json, provisioning-ca.pem,
   * broker-ca.pem) embedded as the image's certs/. Without it the image is unpinned, as before.
   */
  pinDir?: string;
}

export interface BundleResult {
  file: string;
  bytes: number;
  files: number;
  manifest: Manifest;
}

export interface Manifest {
  name: string;
  version: string;
  arch: BundleArch;
  node: string;
  builtAt: string;
  commit: string;
  files: { path: string; sha256: string; bytes: number }[];
}

/** Production packages (lockfile paths like node_modules/a/node_modules/b) that are present on disk. */
export function productionPackages(root: string): string[] {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
  };
  const out: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || entry.dev) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    if (EXCLUDED_PACKAGES.some((re) => re.test(name))) continue;
    // Optional packages for another platform are absent, which is fine; a required one missing is not.
    if (!existsSync(join(root, path))) {
      if (entry.optional || entry.devOptional) continue;
      throw new LenscapError<ToolCode>(
        'ERR_BUNDLE_DEPS',
        `production dependency ${path} is missing: run npm ci`,
      );
    }
    out.push(path);
  }
  return out.sort();
}

/** What kind of native binary a file is, from its first bytes, or null for anything else. */
export function nativeKind(head: Buffer): { format: 'elf' | 'mach-o' | 'pe'; machine?: number } | null {
  if (head.length >= 20 && head[0] === 0x7f && head.toString('latin1', 1, 4) === 'ELF') {
    const little = head[5] === 1;
    return { format: 'elf', machine: little ? head.readUInt16LE(18) : head.readUInt16BE(18) };
  }
  if (head.length >= 4) {
    const magic = head.readUInt32BE(0);
    if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(magic))
      return { format: 'mach-o' };
  }
  if (head.length >= 64 && head.toString('latin1', 0, 2) === 'MZ') {
    const off = head.readUInt32LE(60);
    if (off > 0 && off + 4 <= head.length && head.toString('latin1', off, off + 4) === 'PE\0\0')
      return { format: 'pe' };
  }
  return null;
}

function readHead(file: string, bytes = 4096): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...walk(p, base));
    else if (ent.isFile()) out.push(relative(base, p).split(sep).join('/'));
    else if (ent.isSymbolicLink()) out.push(relative(base, p).split(sep).join('/'));
  }
  return out.sort();
}

/**
 * Every reason the staged tree is not a pure-JS bundle for `arch`: native addons, executables of
 * any architecture (the message names the one found, so a wrong-arch binary is obvious), symlinks.
 */
export function findNativeFiles(dir: string, arch: BundleArch): string[] {
  const problems: string[] = [];
  for (const rel of walk(dir)) {
    const abs = join(dir, rel);
    if (statSync(abs, { throwIfNoEntry: false }) === undefined || !statSync(abs).isFile()) {
      problems.push(`${rel}: not a regular file (symlinks are not shipped)`);
      continue;
    }
    if (rel.endsWith('.node')) {
      problems.push(`${rel}: native addon (.node); the bundle must be pure JS`);
      continue;
    }
    const kind = nativeKind(readHead(abs));
    if (!kind) continue;
    if (kind.format === 'elf') {
      const found = Object.entries(ARCHES).find(([, a]) => a.elfMachine === kind.machine);
      const what = found ? `${found[1].label} (${found[0]})` : `e_machine ${kind.machine}`;
      problems.push(
        found && found[0] === arch
          ? `${rel}: ELF executable for ${what}; the bundle must be pure JS (the board brings node and ffmpeg)`
          : `${rel}: ELF executable for ${what} in a ${arch} bundle (wrong architecture)`,
      );
    } else {
      problems.push(`${rel}: ${kind.format} executable in a ${arch} bundle (wrong platform)`);
    }
  }
  return problems;
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;

/** Relative imports in the compiled agent whose target the bundle does not carry. */
export function findDanglingImports(dir: string): string[] {
  const problems: string[] = [];
  const files = walk(join(dir, 'dist')).map((f) => `dist/${f}`);
  const present = new Set(files);
  for (const rel of files) {
    if (!rel.endsWith('.js')) continue;
    const src = readFileSync(join(dir, rel), 'utf8');
    for (const m of src.matchAll(IMPORT_RE)) {
      const target = posix.normalize(posix.join(posix.dirname(rel), m[2]!));
      if (present.has(target)) continue;
      problems.push(`${rel} imports ${m[2]} (${target}), which the bundle does not carry`);
    }
  }
  return problems;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0)
    throw new LenscapError<ToolCode>(
      'ERR_BUNDLE_STEP',
      `${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`,
    );
}

export function buildBundle(opts: BundleOptions): BundleResult {
  const root = opts.root ?? repoRoot;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (!(opts.arch in ARCHES))
    throw new LenscapError<ToolCode>('ERR_BUNDLE_ARCH', `unknown arch "${opts.arch}" (arm64, armhf or x64)`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    engines?: { node?: string };
    dependencies?: Record<string, string>;
    license?: string;
    description?: string;
  };
  const name = `${pkg.name}-${pkg.version}-linux-${opts.arch}`;
  // Before any work: certs/ (and the pin dir) must hold public material only.
  const pinProblems = [
    ...pinDirProblems(join(root, 'certs')).map((p) => `certs/${p}`),
    ...(opts.pinDir ? pinDirProblems(opts.pinDir).map((p) => `${opts.pinDir}/${p}`) : []),
  ];
  if (opts.pinDir && !existsSync(opts.pinDir)) pinProblems.push(`--pin ${opts.pinDir}: no such folder`);
  if (pinProblems.length > 0)
    throw new LenscapError<ToolCode>(
      'ERR_BUNDLE_PIN_SECRET',
      `bundle ${name} refused: certs/ and the pin dir hold public material only:\n${pinProblems.map((p) => `  - ${p}`).join('\n')}`,
      { problems: pinProblems },
    );
  const pins = opts.pinDir ? loadPins(opts.pinDir) : undefined;
  if (opts.pinDir && !pins)
    throw new LenscapError<ToolCode>(
      'ERR_BUNDLE_PIN_SECRET',
      `--pin ${opts.pinDir}: holds none of ${Object.values(PIN_FILES).join(', ')}`,
    );
  const outDir = opts.outDir ?? join(root, 'dist');
  const work = mkdtempSync(join(tmpdir(), 'lenscap-bundle-'));
  const stage = join(work, name);
  try {
    mkdirSync(stage, { recursive: true });
    // Compile straight into the staging tree: the repo's dist/ is left alone.
    const buildArgs = [join(root, 'scripts', 'build.mjs'), '--out-dir', join(stage, 'dist')];
    if (opts.allowTypeErrors) buildArgs.push('--allow-type-errors');
    if (opts.buildTimeMs !== undefined)
      buildArgs.push('--build-time', new Date(opts.buildTimeMs).toISOString());
    run(process.execPath, buildArgs, root);
    const devCode = walk(join(stage, 'dist'))
      .map((rel) => `dist/${rel}`)
      .filter((rel) => DEV_ONLY_DIST.test(rel));
    if (devCode.length > 0)
      throw new LenscapError<ToolCode>(
        'ERR_BUNDLE_DEV_CODE',
        `the device build compiled development-only code (does agent/ or drivers/ import scripts/?):\n${devCode.map((f) => `  - ${f}`).join('\n')}`,
        { files: devCode },
      );

    const copy = (from: string, to = from) => {
      mkdirSync(dirname(join(stage, to)), { recursive: true });
      cpSync(join(root, from), join(stage, to), { recursive: true, dereference: true });
    };
    copy('bin/lenscap.js');
    copy('packaging/lenscap.service');
    copy('packaging/lenscap.init');
    copy('packaging/agent.json');
    copy('scripts/install-on-device.sh', 'install-on-device.sh');
    if (existsSync(join(root, 'docs', 'shipping.md'))) copy('docs/shipping.md');
    if (existsSync(join(root, 'certs', 'README.md'))) copy('certs/README.md');
    if (pins) {
      for (const f of Object.values(PIN_FILES))
        if (existsSync(join(pins.dir, f))) cpSync(join(pins.dir, f), join(stage, 'certs', f));
      log(
        `pinned: ${Object.values(PIN_FILES)
          .filter((f) => existsSync(join(pins.dir, f)))
          .join(', ')}`,
      );
    }
    if (existsSync(join(root, 'LICENSE'))) copy('LICENSE');
    const shippedPkg = {
      name: pkg.name,
      version: pkg.version,
      description: pkg.description,
      license: pkg.license,
      private: true,
      type: 'module',
      engines: pkg.engines,
      bin: { lenscap: 'bin/lenscap.js' },
      dependencies: Object.fromEntries(
        Object.entries(pkg.dependencies ?? {}).filter(([d]) => !EXCLUDED_PACKAGES.some((re) => re.test(d))),
      ),
    };
    writeFileSync(join(stage, 'package.json'), JSON.stringify(shippedPkg, null, 2) + '\n');

    const packages = productionPackages(root);
    for (const p of packages) {
      cpSync(join(root, p), join(stage, p), {
        recursive: true,
        dereference: true,
        filter: (src) => {
          const rel = relative(join(root, p), src);
          const parts = rel.split(sep);
          // Nested node_modules are copied as packages of their own (if production).
          if (parts.includes('node_modules')) return false;
          if (parts.some((x) => DROPPED_DIRS.has(x))) return false;
          const fromRoot = relative(root, src).split(sep).join('/');
          if (DROPPED_SUBTREES.some((t) => fromRoot === t || fromRoot.startsWith(t + '/'))) return false;
          return !(DROPPED_FILES.test(src) && !/licen[cs]e/i.test(src));
        },
      });
    }

    const dangling = findDanglingImports(stage);
    // A tree mid-change (--allow-type-errors) may lack modules still being written: warn only.
    if (opts.allowTypeErrors) dangling.forEach((d) => log(`warning: ${d}`));
    const problems = [...findNativeFiles(stage, opts.arch), ...(opts.allowTypeErrors ? [] : dangling)];
    if (problems.length > 0) {
      throw new LenscapError<ToolCode>(
        'ERR_BUNDLE_NATIVE',
        `bundle ${name} refused:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
        { problems },
      );
    }

    const info = JSON.parse(readFileSync(join(stage, 'dist', 'build-info.json'), 'utf8')) as {
      builtAt: string;
      commit: string;
      buildTimeMs: number;
    };
    const files = walk(stage);
    for (const rel of files) chmodSync(join(stage, rel), EXECUTABLES.has(rel) ? 0o755 : 0o644);
    const manifest: Manifest = {
      name: pkg.name,
      version: pkg.version,
      arch: opts.arch,
      node: pkg.engines?.node ?? '>=20',
      builtAt: info.builtAt,
      commit: info.commit,
      files: files.map((rel) => ({
        path: rel,
        sha256: sha256(join(stage, rel)),
        bytes: statSync(join(stage, rel)).size,
      })),
    };
    writeFileSync(join(stage, 'MANIFEST.json'), JSON.stringify(manifest, null, 1) + '\n');
    const sums = [
      ...manifest.files.map((f) => `${f.sha256}  ${f.path}`),
      `${sha256(join(stage, 'MANIFEST.json'))}  MANIFEST.json`,
    ];
    writeFileSync(join(stage, 'SHA256SUMS'), sums.join('\n') + '\n');

    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${name}.tar.gz`);
    const mtime = `@${Math.floor(info.buildTimeMs / 1000)}`;
    run(
      'tar',
      [
        '--sort=name',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        `--mtime=${mtime}`,
        '-I',
        'gzip -9n',
        '-cf',
        file,
        name,
      ],
      work,
    );
    const bytes = statSync(file).size;
    log(
      `bundle ${file}: ${(bytes / 1024 / 1024).toFixed(2)} MiB (${bytes} bytes), ${manifest.files.length} files, ${packages.length} packages`,
    );
    return { file, bytes, files: manifest.files.length, manifest };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function cli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string' },
      out: { type: 'string' },
      pin: { type: 'string' },
      'allow-type-errors': { type: 'boolean' },
    },
    strict: true,
  });
  const archs = (values.arch ?? '').split(',').filter(Boolean) as BundleArch[];
  if (archs.length === 0) {
    process.stderr.write(
      'usage: npm run bundle -- --arch arm64|armhf|x64[,...] [--pin DIR] [--out DIR] [--allow-type-errors]\n',
    );
    return 2;
  }
  for (const arch of archs)
    buildBundle({
      arch,
      allowTypeErrors: values['allow-type-errors'] === true,
      ...(values.pin ? { pinDir: values.pin } : {}),
      ...(values.out ? { outDir: values.out } : {}),
    });
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  cli(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
