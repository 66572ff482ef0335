/**
 * The development verbs live in the `lenscap-dev` bin (scripts/dev-cloud/cli.ts), never in device
 * code: `lenscap-dev grant` prints the token alone; in a checkout `lenscap dev-cloud …` is an alias
 * that runs the same bin (same stdout, same exit codes, a note on stderr, signals passed on); where
 * there is no lenscap-dev (a bundle) the alias does not exist; and no file under agent/ or drivers/
 * imports scripts/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../agent/main.ts';
import { devBinPath } from '../../agent/cli/dev-alias.ts';
import type { CliIo } from '../../agent/cli/command.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { waitUntil, within } from '../../harness/wait.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const JWS = /^[\w-]+\.[\w-]+\.[\w-]+$/;

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

function run(bin: string, args: string[]) {
  return spawnSync(process.execPath, [join(REPO, 'bin', bin), ...args], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('package.json names the lenscap-dev bin; the device build compiles agent/ and drivers/ only', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  assert.equal(pkg.bin['lenscap-dev'], 'bin/lenscap-dev.js');
  const build = JSON.parse(readFileSync(join(REPO, 'tsconfig.build.json'), 'utf8'));
  assert.deepEqual(build.include, ['agent', 'drivers']);
  assert.equal(devBinPath(), join(REPO, 'bin', 'lenscap-dev.js'));
});

test('lenscap-dev grant prints only the token; `lenscap dev-cloud grant` is the same, plus a note', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const args = ['grant', '--serial', 'S', '--viewer', 'V', '--ttl', '8', '--dev-dir', tmp.dir];
  const dev = run('lenscap-dev.js', args);
  assert.equal(dev.status, 0, dev.stderr);
  assert.match(dev.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  assert.equal(dev.stderr, '');

  const alias = run('lenscap.js', ['dev-cloud', ...args]);
  assert.equal(alias.status, 0, alias.stderr);
  assert.match(alias.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  assert.match(alias.stderr, /`lenscap dev-cloud` is now `lenscap-dev`/);

  // Same exit codes: a usage error is 2 either way, with the same coded line.
  const bad = ['grant', '--serial', 'S', '--viewer', 'V', '--ttl', 'soon', '--dev-dir', tmp.dir];
  const devBad = run('lenscap-dev.js', bad);
  const aliasBad = run('lenscap.js', ['dev-cloud', ...bad]);
  assert.equal(devBad.status, 2);
  assert.equal(aliasBad.status, 2);
  assert.equal(devBad.stdout, aliasBad.stdout);
  assert.match(aliasBad.stderr, /ERR_CLI_USAGE: --ttl/);
  // A runtime failure is 1 either way.
  const fail = ['token', '--serial', 'bad/serial', '--dev-dir', tmp.dir];
  assert.equal(run('lenscap-dev.js', fail).status, 1);
  assert.equal(run('lenscap.js', ['dev-cloud', ...fail]).status, 1);
});

test('--help exits 0 with the same text through the alias, for the dev cloud and each verb', () => {
  for (const verb of [[], ['token'], ['grant'], ['bind']]) {
    const dev = run('lenscap-dev.js', [...verb, '--help']);
    const alias = run('lenscap.js', ['dev-cloud', ...verb, '--help']);
    assert.equal(dev.status, 0, dev.stderr);
    assert.equal(alias.status, 0, alias.stderr);
    assert.match(dev.stdout, /usage: lenscap-dev/);
    assert.equal(alias.stdout, dev.stdout, `same help for ${verb.join(' ') || '(no verb)'}`);
  }
  const unknown = run('lenscap-dev.js', ['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^ERR_CLI_USAGE: unknown command "frobnicate"/);
});

test('in-process, the alias passes the child output on line by line', async (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const io = capture();
  const code = await main(
    ['dev-cloud', 'grant', '--serial', 'CAM-1', '--viewer', 'v', '--dev-dir', tmp.dir],
    io,
  );
  assert.equal(code, 0, io.stderr.join('\n'));
  assert.equal(io.stdout.length, 1);
  assert.match(io.stdout[0]!, JWS);
  assert.match(io.stderr[0]!, /^note: `lenscap dev-cloud` is now `lenscap-dev`/);
});

test('without a lenscap-dev next to it (a bundle) there is no dev-cloud verb', async () => {
  let io = capture();
  assert.equal(await main(['--help'], io, null), 0);
  assert.doesNotMatch(io.stdout.join('\n'), /dev-cloud|lenscap-dev/);
  io = capture();
  assert.equal(await main(['dev-cloud', 'token', '--serial', 'X'], io, null), 2);
  assert.match(io.stderr[0]!, /^ERR_CLI_USAGE: unknown command "dev-cloud token --serial X"/);
  // In this checkout the alias is listed, marked as such.
  io = capture();
  assert.equal(await main(['--help'], io), 0);
  assert.match(io.stdout.join('\n'), /dev-cloud\s+\(source checkout only\)/);
});

test(
  '`lenscap dev-cloud --provisioning-only` via the alias: SIGTERM reaches the dev cloud, exit 0',
  {
    timeout: 240_000,
  },
  async (t) => {
    const tmp = makeTempDir();
    t.after(tmp.cleanup);
    const child = spawn(
      process.execPath,
      [
        join(REPO, 'bin', 'lenscap.js'),
        'dev-cloud',
        '--provisioning-only',
        '--dev-dir',
        join(tmp.dir, 'dev'),
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    await waitUntil(() => /ready/.test(out), 150_000, '"ready"', { detail: () => `got:\n${out}\n${err}` });
    child.kill('SIGTERM');
    const code = await within(exited, 30_000, 'the alias to exit after SIGTERM');
    assert.equal(code, 0, err);
    assert.match(out, /stopped \(SIGTERM\)/);
  },
);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

test('no file under agent/ or drivers/ imports anything under scripts/', () => {
  const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)(['"`])([^'"`]+)\1/g;
  const offenders: string[] = [];
  for (const top of ['agent', 'drivers']) {
    for (const file of walk(join(REPO, top))) {
      for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
        const spec = m[2]!;
        if (!spec.startsWith('.')) continue;
        const target = relative(REPO, resolve(dirname(file), spec));
        if (target.startsWith('scripts/') || target.startsWith('test/') || target.startsWith('bench/'))
          offenders.push(`${relative(REPO, file)} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

test('one exit-code scheme for every verb of both bins: unknown option → 2 (ERR_CLI_USAGE)', async () => {
  const { commands } = await import('../../agent/cli/registry.ts');
  const { devCommands } = await import('../../scripts/dev-cloud/cli/registry.ts');
  const { main: devMain } = await import('../../scripts/dev-cloud/cli.ts');
  const { EXIT } = await import('../../agent/cli/exit-codes.ts');
  assert.deepEqual(EXIT, { ok: 0, failed: 1, usage: 2, refused: 3 });
  for (const c of commands) {
    const io = capture();
    assert.equal(await main([...c.name.split(' '), '--no-such-option'], io, null), EXIT.usage, c.name);
    assert.match(io.stderr.join('\n'), /ERR_CLI_USAGE/, c.name);
  }
  for (const c of [{ name: '' }, ...devCommands]) {
    const io = capture();
    const argv = [...c.name.split(' ').filter(Boolean), '--no-such-option'];
    assert.equal(await devMain(argv, io), EXIT.usage, c.name || '(dev cloud)');
    assert.match(io.stderr.join('\n'), /ERR_CLI_USAGE/);
  }
  // A coded failure is 1 in both.
  let io = capture();
  assert.equal(await main(['config', 'check', '/nonexistent/agent.json'], io, null), EXIT.failed);
  io = capture();
  assert.equal(
    await devMain(['token', '--serial', 'bad/serial', '--dev-dir', '/tmp/x-lenscap-none'], io),
    EXIT.failed,
  );
});
