// The x64 bundle, built for real into a temp dir: its manifest and sums, what it carries (compiled
// agent, production deps, service files) and what it must not (native addons, @ffmpeg-installer,
// dev dependencies, the dev cloud, tests). Then the extracted bundle runs under this node.
// Plus the native-binary refusal on synthetic trees (a .node addon, ELF for another arch).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  buildBundle,
  findNativeFiles,
  nativeKind,
  productionPackages,
  type BundleResult,
} from '../../scripts/bundle.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';

const root = new URL('../..', import.meta.url).pathname;
const BUILD_TIME = Date.parse('2026-01-02T03:04:05.000Z');

function walkJs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name));
}

function elfHeader(machine: number): Buffer {
  const b = Buffer.alloc(64);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2; // 64-bit
  b[5] = 1; // little endian
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(machine, 18);
  return b;
}

describe('x64 bundle', { timeout: 120_000 }, () => {
  const tmp = makeTempDir('lenscap-bundle-test-');
  let result: BundleResult;
  let dir: string;
  const files = () => result.manifest.files.map((f) => f.path);

  const pins = join(tmp.dir, 'pins');
  const pinFiles: Record<string, string> = {};

  before(() => {
    // The image pins public material made here (certs/README.md): a CA certificate and a JWK.
    mkdirSync(pins);
    const { publicKey } = generateKeyPairSync('ed25519');
    pinFiles['trust-root.jwk.json'] = JSON.stringify({
      ...publicKey.export({ format: 'jwk' }),
      kid: 'root-1',
    });
    pinFiles['broker-ca.pem'] = DevCa.create('pinned broker CA').certPem;
    for (const [f, v] of Object.entries(pinFiles)) writeFileSync(join(pins, f), v);
    // LENSCAP_TEST_ALLOW_TYPE_ERRORS=1: try with a tree mid-change (never in CI).
    result = buildBundle({
      arch: 'x64',
      pinDir: pins,
      outDir: tmp.dir,
      buildTimeMs: BUILD_TIME,
      allowTypeErrors: process.env.LENSCAP_TEST_ALLOW_TYPE_ERRORS === '1',
      log: () => {},
    });
    const x = spawnSync('tar', ['-xzf', result.file, '-C', tmp.dir]);
    assert.equal(x.status, 0);
    dir = join(tmp.dir, `lenscap-${result.manifest.version}-linux-x64`);
  });
  after(() => tmp.cleanup());

  test('is named lenscap-<version>-linux-x64.tar.gz and stays small', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    assert.equal(result.file, join(tmp.dir, `lenscap-${pkg.version}-linux-x64.tar.gz`));
    assert.equal(statSync(result.file).size, result.bytes);
    assert.ok(result.bytes < 15 * 1024 * 1024, `bundle is ${result.bytes} bytes`);
  });

  test('manifest lists every file with its sha256, and SHA256SUMS checks with sha256sum', () => {
    const manifest = JSON.parse(readFileSync(join(dir, 'MANIFEST.json'), 'utf8'));
    assert.equal(manifest.arch, 'x64');
    assert.equal(manifest.builtAt, new Date(BUILD_TIME).toISOString());
    for (const f of manifest.files as { path: string; sha256: string; bytes: number }[]) {
      const data = readFileSync(join(dir, f.path));
      assert.equal(createHash('sha256').update(data).digest('hex'), f.sha256, f.path);
      assert.equal(data.length, f.bytes, f.path);
    }
    const check = spawnSync('sha256sum', ['--quiet', '-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  test('carries the compiled agent, service files, default config and installer', () => {
    for (const f of [
      'bin/lenscap.js',
      'dist/agent/main.js',
      'dist/bundle/agent/main.js',
      'dist/build-info.json',
      'package.json',
      'packaging/lenscap.service',
      'packaging/lenscap.init',
      'packaging/agent.json',
      'install-on-device.sh',
    ]) {
      assert.ok(files().includes(f), `missing ${f}`);
    }
    assert.ok(files().some((f) => f.startsWith('node_modules/node-media-server/')));
    assert.ok(files().some((f) => f.startsWith('node_modules/mqtt/')));
    assert.equal(statSync(join(dir, 'install-on-device.sh')).mode & 0o111, 0o111);
    assert.equal(statSync(join(dir, 'dist/agent/main.js')).mode & 0o777, 0o644);
  });

  test('leaves out native code, @ffmpeg-installer, dev dependencies, dev cloud, tests and sources', () => {
    const bad = files().filter(
      (f) =>
        f.endsWith('.node') ||
        f.startsWith('node_modules/@ffmpeg-installer/') ||
        /^node_modules\/(typescript|tsx|aedes|fast-check|playwright-core|mpegts\.js|pino-pretty|@types)\//.test(
          f,
        ) ||
        f.startsWith('dist/scripts/') ||
        f.startsWith('node_modules/node-media-server/webadmin/') ||
        f.startsWith('node_modules/mqtt/dist/') ||
        /dev-cloud|lenscap-dev/.test(f) ||
        f.startsWith('test/') ||
        f.startsWith('dist/test/') ||
        /\.[mc]?ts$/.test(f),
    );
    assert.deepEqual(bad, []);
    assert.deepEqual(findNativeFiles(dir, 'x64'), []);
  });

  test('carries the pins given with --pin as certs/, and the compiled agent finds them there', () => {
    for (const [f, v] of Object.entries(pinFiles))
      assert.equal(readFileSync(join(dir, 'certs', f), 'utf8'), v, f);
    assert.ok(files().includes('certs/README.md'));
    assert.ok(!files().includes('certs/provisioning-ca.pem'), 'only what was pinned');
    const found = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { loadPins, defaultPinDir } = await import(${JSON.stringify(join(dir, 'dist/agent/identity/pins.js'))});
         const p = loadPins(defaultPinDir()); console.log(JSON.stringify({ dir: p.dir, root: p.trustRootJwk.kid, broker: !!p.brokerCaPem }));`,
      ],
      { encoding: 'utf8', cwd: dir, env: { PATH: process.env.PATH } },
    );
    assert.equal(found.status, 0, found.stderr);
    assert.deepEqual(JSON.parse(found.stdout), {
      dir: join(dir, 'certs') + '/',
      root: 'root-1',
      broker: true,
    });
  });

  test('holds no private key outside third-party code', () => {
    const leaks = files().filter(
      (f) => !f.startsWith('node_modules/') && /PRIVATE KEY-----/.test(readFileSync(join(dir, f), 'latin1')),
    );
    assert.deepEqual(leaks, []);
  });

  test('stamps the build time into the compiled agent', () => {
    const info = JSON.parse(readFileSync(join(dir, 'dist/build-info.json'), 'utf8'));
    assert.equal(info.buildTimeMs, BUILD_TIME);
    const stamped = join(dir, 'dist/agent/grants/build-time.js');
    if (existsSync(join(root, 'agent/grants/build-time.ts'))) {
      assert.match(readFileSync(stamped, 'utf8'), new RegExp(`= ${BUILD_TIME};`));
    }
  });

  test('the launcher runs the esbuild bundle, which needs nothing of the tsc tree', () => {
    // A copy without dist/agent/: only the bundle (and node_modules) can answer.
    const copy = join(tmp.dir, 'bundle-only');
    cpSync(dir, copy, { recursive: true });
    rmSync(join(copy, 'dist/agent'), { recursive: true });
    const run = (args: string[]) =>
      spawnSync(process.execPath, [join(copy, 'bin/lenscap.js'), ...args], {
        encoding: 'utf8',
        cwd: copy,
        env: { PATH: process.env.PATH },
      });
    const help = run(['--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /usage: lenscap/);
    // config check loads the schema, migrations and the pins from the bundle's chunks.
    const check = run(['config', 'check', join(copy, 'packaging/agent.json')]);
    assert.equal(check.status, 0, check.stderr);
    assert.equal(JSON.parse(check.stdout).camera.driver, 'v4l2');
    // The stamp reached the bundle too (the grants clock floor); minified numbers may be written
    // with an exponent (1767323045e3).
    const bundled = walkJs(join(copy, 'dist/bundle')).map((f) => readFileSync(f, 'utf8'));
    const stamp = new RegExp(`\\b(${BUILD_TIME}|${BUILD_TIME / 1000}e3)\\b`);
    assert.ok(
      bundled.some((t) => stamp.test(t)),
      'build time stamped into dist/bundle',
    );
    // Minified, so a board loads less source text: no file keeps tsc's indentation.
    assert.ok(bundled.every((t) => !/\n {4}\S/.test(t)));
  });

  test('runs from the extracted tree under this node (no tsx, no dev deps)', () => {
    const help = spawnSync(process.execPath, [join(dir, 'bin/lenscap.js'), '--help'], {
      encoding: 'utf8',
      cwd: dir,
      env: { PATH: process.env.PATH },
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /usage: lenscap/);
    // Device verbs only: no development verb, not even the checkout's `dev-cloud` alias.
    assert.doesNotMatch(help.stdout + help.stderr, /dev-cloud|lenscap-dev|token|bind/);
    const dev = spawnSync(process.execPath, [join(dir, 'bin/lenscap.js'), 'dev-cloud', '--help'], {
      encoding: 'utf8',
      cwd: dir,
      env: { PATH: process.env.PATH },
    });
    assert.equal(dev.status, 2, dev.stdout + dev.stderr);
    assert.match(dev.stderr, /^ERR_CLI_USAGE: unknown command "dev-cloud --help"/);
    // log.pretty on a bundle (no pino-pretty shipped): JSON, and one warning saying so.
    const pretty = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { createLogger } = await import(${JSON.stringify(join(dir, 'dist/agent/log.js'))});
         createLogger({ pretty: true }).info('one'); createLogger({ pretty: true }).info('two');`,
      ],
      { encoding: 'utf8', cwd: dir, env: { PATH: process.env.PATH } },
    );
    assert.equal(pretty.status, 0, pretty.stderr);
    const logged = pretty.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(logged.filter((l) => l.code === 'LOG_PRETTY_UNAVAILABLE' && l.level === 40).length, 1);
    assert.deepEqual(
      logged.filter((l) => !l.code).map((l) => l.msg),
      ['one', 'two'],
    );
    const check = spawnSync(
      process.execPath,
      [join(dir, 'bin/lenscap.js'), 'config', 'check', join(dir, 'packaging/agent.json')],
      { encoding: 'utf8', cwd: dir, env: { PATH: process.env.PATH } },
    );
    assert.equal(check.status, 0, check.stderr);
    assert.equal(JSON.parse(check.stdout).camera.driver, 'v4l2');
  });
});

describe('pins: a private key under certs/ or the pin dir fails the build (before compiling)', () => {
  test('a private key in the --pin folder', (t) => {
    const tmp = makeTempDir();
    t.after(tmp.cleanup);
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(
      join(tmp.dir, 'broker-ca.pem'),
      privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    );
    assert.throws(
      () => buildBundle({ arch: 'x64', pinDir: tmp.dir, outDir: tmp.dir, log: () => {} }),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_BUNDLE_PIN_SECRET' && /broker-ca\.pem: holds a private key/.test(e.message),
    );
  });

  test("a private key anywhere under the repository's certs/", (t) => {
    const tmp = makeTempDir();
    t.after(tmp.cleanup);
    // A stand-in repository root: package.json and a certs/ with a key someone dropped there.
    writeFileSync(join(tmp.dir, 'package.json'), JSON.stringify({ name: 'lenscap', version: '0.0.0' }));
    mkdirSync(join(tmp.dir, 'certs', 'old'), { recursive: true });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(
      join(tmp.dir, 'certs', 'old', 'device.key'),
      privateKey.export({ format: 'pem', type: 'pkcs1' }) as string,
    );
    assert.throws(
      () => buildBundle({ arch: 'x64', root: tmp.dir, outDir: tmp.dir, log: () => {} }),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_BUNDLE_PIN_SECRET' && /certs\/old\/device\.key: holds a private key/.test(e.message),
    );
  });
});

describe('native binary refusal', () => {
  test('a .node addon, ELF for another arch and ELF for the same arch are all refused', (t) => {
    const tmp = makeTempDir();
    t.after(tmp.cleanup);
    mkdirSync(join(tmp.dir, 'node_modules/x/build'), { recursive: true });
    writeFileSync(join(tmp.dir, 'node_modules/x/index.js'), 'module.exports = 1;\n');
    writeFileSync(join(tmp.dir, 'node_modules/x/build/addon.node'), elfHeader(183));
    writeFileSync(join(tmp.dir, 'node_modules/x/build/helper'), elfHeader(62));
    writeFileSync(join(tmp.dir, 'node_modules/x/build/same'), elfHeader(183));
    const problems = findNativeFiles(tmp.dir, 'arm64');
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('addon.node') && p.includes('native addon')));
    assert.ok(
      problems.some((p) => p.includes('helper') && p.includes('x86-64') && p.includes('wrong architecture')),
    );
    assert.ok(problems.some((p) => p.includes('same') && p.includes('pure JS')));
  });

  test('recognises ELF machines, Mach-O and PE; text is not native', () => {
    assert.deepEqual(nativeKind(elfHeader(40)), { format: 'elf', machine: 40 });
    assert.deepEqual(nativeKind(Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 0, 0, 0, 0])), { format: 'mach-o' });
    const pe = Buffer.alloc(128);
    pe.write('MZ', 0, 'latin1');
    pe.writeUInt32LE(64, 60);
    pe.write('PE\0\0', 64, 'latin1');
    assert.deepEqual(nativeKind(pe), { format: 'pe' });
    assert.equal(
      nativeKind(Buffer.from('MZ is a text file that starts like a PE but is not one, honestly.')),
      null,
    );
    assert.equal(nativeKind(Buffer.from('#!/usr/bin/env node\n')), null);
  });

  test('production packages leave out dev dependencies and @ffmpeg-installer', () => {
    const pkgs = productionPackages(root);
    assert.ok(pkgs.includes('node_modules/node-media-server'));
    assert.ok(
      !pkgs.some(
        (p) =>
          p.includes('@ffmpeg-installer') ||
          p.endsWith('/typescript') ||
          p.endsWith('/aedes') ||
          p.includes('@types/'),
      ),
    );
  });
});
