// install-on-device.sh into a fake root (--root): files, user, modes, service files, upgrade that
// keeps the config, and refusal of a tampered bundle. Runs the real script with /bin/sh on a real
// bundle built from this tree. (The QEMU board test runs it on the board, and under BusyBox.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { buildBundle } from '../../scripts/bundle.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const root = new URL('../..', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;

function install(args: string[]) {
  return spawnSync('/bin/sh', [join(root, 'scripts/install-on-device.sh'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
}

function fakeRoot(dir: string, opts: { systemd?: boolean } = {}): string {
  const r = join(dir, `root-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(join(r, 'etc/init.d'), { recursive: true });
  writeFileSync(
    join(r, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nsystemd-network:x:100:102::/run:/usr/sbin/nologin\n',
  );
  writeFileSync(join(r, 'etc/group'), 'root:x:0:\nvideo:x:44:\n');
  if (opts.systemd) {
    mkdirSync(join(r, 'lib/systemd'), { recursive: true });
    writeFileSync(join(r, 'lib/systemd/systemd'), '#!/bin/sh\n', { mode: 0o755 });
  }
  return r;
}

describe('install-on-device.sh into a fake root', { timeout: 120_000 }, () => {
  const tmp = makeTempDir('lenscap-install-test-');
  let bundle: string;
  before(() => {
    // LENSCAP_TEST_ALLOW_TYPE_ERRORS=1: try with a tree mid-change (never in CI).
    bundle = buildBundle({
      arch: 'x64',
      outDir: tmp.dir,
      allowTypeErrors: process.env.LENSCAP_TEST_ALLOW_TYPE_ERRORS === '1',
      log: () => {},
    }).file;
  });
  after(() => tmp.cleanup());

  test('systemd board: bundle, user in video, 0700 state dir, config, launcher, hardened unit', () => {
    const r = fakeRoot(tmp.dir, { systemd: true });
    const res = install([
      '--bundle',
      bundle,
      '--root',
      r,
      '--node',
      '/usr/local/bin/node',
      '--camera-device',
      '/dev/video2',
    ]);
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /checksums OK/);
    assert.ok(existsSync(join(r, 'opt/lenscap/bin/lenscap.js')));
    assert.ok(existsSync(join(r, 'opt/lenscap/dist/agent/main.js')));
    const passwd = readFileSync(join(r, 'etc/passwd'), 'utf8');
    const user = passwd
      .split('\n')
      .find((l) => l.startsWith('lenscap:'))!
      .split(':');
    assert.equal(user[5], '/var/lib/lenscap');
    assert.match(user[6]!, /nologin|false/);
    assert.ok(
      Number(user[2]) >= 100 && Number(user[2]) < 1000 && user[2] !== '100',
      `system uid, not a taken one: ${user[2]}`,
    );
    assert.match(readFileSync(join(r, 'etc/group'), 'utf8'), /^video:x:44:lenscap$/m);
    const state = statSync(join(r, 'var/lib/lenscap'));
    assert.equal(state.mode & 0o777, 0o700);
    if (isRoot) assert.equal(state.uid, Number(user[2]));
    assert.equal(statSync(join(r, 'etc/lenscap/agent.json')).mode & 0o777, 0o640);
    assert.deepEqual(
      JSON.parse(readFileSync(join(r, 'etc/lenscap/agent.json'), 'utf8')),
      JSON.parse(readFileSync(join(root, 'packaging/agent.json'), 'utf8')),
    );
    assert.match(
      readFileSync(join(r, 'usr/local/bin/lenscap'), 'utf8'),
      /exec "\/usr\/local\/bin\/node" \/opt\/lenscap\/bin\/lenscap\.js "\$@"/,
    );
    const unit = readFileSync(join(r, 'etc/systemd/system/lenscap.service'), 'utf8');
    assert.doesNotMatch(unit, /@[A-Z_]+@/, 'every placeholder filled');
    assert.match(
      unit,
      /^ExecStart=\/usr\/local\/bin\/node --max-semi-space-size=1 --optimize-for-size \/opt\/lenscap\/bin\/lenscap\.js run --config \/etc\/lenscap\/agent\.json$/m,
    );
    assert.deepEqual(unit.match(/^DeviceAllow=.*$/gm), ['DeviceAllow=/dev/video2 rw'], 'the camera only');
    assert.equal(
      readlinkSync(join(r, 'etc/systemd/system/multi-user.target.wants/lenscap.service')),
      '/etc/systemd/system/lenscap.service',
    );
  });

  test("the unit may also open the board's hardware encoder node, found in sysfs", () => {
    const r = fakeRoot(tmp.dir, { systemd: true });
    for (const [dev, name] of [
      ['video0', 'unicam'],
      ['video10', 'bcm2835-codec-decode'],
      ['video11', 'bcm2835-codec-encode'],
    ]) {
      mkdirSync(join(r, 'sys/class/video4linux', dev!), { recursive: true });
      writeFileSync(join(r, 'sys/class/video4linux', dev!, 'name'), `${name}\n`);
    }
    assert.equal(install(['--bundle', bundle, '--root', r, '--node', '/usr/bin/node']).status, 0);
    const unit = readFileSync(join(r, 'etc/systemd/system/lenscap.service'), 'utf8');
    assert.deepEqual(unit.match(/^DeviceAllow=.*$/gm), [
      'DeviceAllow=/dev/video0 rw',
      'DeviceAllow=/dev/video11 rw',
    ]);
    const r2 = fakeRoot(tmp.dir, { systemd: true });
    assert.equal(
      install([
        '--bundle',
        bundle,
        '--root',
        r2,
        '--node',
        '/usr/bin/node',
        '--encoder-device',
        '/dev/video31',
      ]).status,
      0,
    );
    assert.deepEqual(
      readFileSync(join(r2, 'etc/systemd/system/lenscap.service'), 'utf8').match(/^DeviceAllow=.*$/gm),
      ['DeviceAllow=/dev/video0 rw', 'DeviceAllow=/dev/video31 rw'],
    );
  });

  test('an upgrade keeps the config and leaves the new default beside it', () => {
    const r = fakeRoot(tmp.dir, { systemd: true });
    assert.equal(install(['--bundle', bundle, '--root', r, '--node', '/usr/bin/node']).status, 0);
    writeFileSync(join(r, 'etc/lenscap/agent.json'), '{"log":{"level":"debug"}}\n');
    const again = install(['--bundle', bundle, '--root', r, '--node', '/usr/bin/node']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(readFileSync(join(r, 'etc/lenscap/agent.json'), 'utf8'), '{"log":{"level":"debug"}}\n');
    assert.ok(existsSync(join(r, 'etc/lenscap/agent.json.dist')));
    assert.equal(
      readFileSync(join(r, 'etc/passwd'), 'utf8').match(/^lenscap:/gm)?.length,
      1,
      'user added once',
    );
    assert.equal(readFileSync(join(r, 'etc/group'), 'utf8').match(/^video:.*lenscap/gm)?.length, 1);
    assert.ok(!readdirHas(join(r, 'opt'), /^\.lenscap\./), 'no staging dirs left');
  });

  test('a board without systemd gets the SysV/BusyBox init script', () => {
    const r = fakeRoot(tmp.dir);
    const res = install(['--bundle', bundle, '--root', r, '--node', '/usr/bin/node', '--init', 'sysv']);
    assert.equal(res.status, 0, res.stderr);
    const script = join(r, 'etc/init.d/lenscap');
    assert.equal(statSync(script).mode & 0o111, 0o111);
    const text = readFileSync(script, 'utf8');
    assert.match(text, /^NODE="\/usr\/bin\/node"$/m);
    // Both init systems run node with the same V8 flags (the idle figures rely on them).
    const unitFlags = /^ExecStart=@NODE@ (.*?) \/opt\/lenscap\/bin\/lenscap\.js /m.exec(
      readFileSync(join(root, 'packaging/lenscap.service'), 'utf8'),
    )?.[1];
    assert.ok(unitFlags, 'the unit passes V8 flags');
    assert.match(text, new RegExp(`^NODE_FLAGS="${unitFlags}"$`, 'm'));
    assert.match(text, /exec \\"\$NODE\\" \$NODE_FLAGS \\"\$APP\\" run/);
    // …and the same malloc arena cap (the idle figures rely on it too).
    const unitEnv = /^Environment=(MALLOC_.*)$/m.exec(
      readFileSync(join(root, 'packaging/lenscap.service'), 'utf8'),
    )?.[1];
    assert.ok(unitEnv, 'the unit sets the malloc environment');
    assert.match(text, new RegExp(`^MALLOC_ENV="${unitEnv}"$`, 'm'));
    assert.match(text, /export \$MALLOC_ENV; exec/);
    assert.equal(spawnSync('/bin/sh', ['-n', script]).status, 0);
    assert.ok(!existsSync(join(r, 'etc/systemd/system/lenscap.service')));
  });

  test('a tampered bundle is refused and nothing is installed', () => {
    const work = join(tmp.dir, 'tampered');
    mkdirSync(work, { recursive: true });
    assert.equal(spawnSync('tar', ['-xzf', bundle, '-C', work]).status, 0);
    const dir = join(
      work,
      bundle
        .split('/')
        .pop()!
        .replace(/\.tar\.gz$/, ''),
    );
    appendFileSync(join(dir, 'dist/agent/main.js'), '\n// injected\n');
    const r = fakeRoot(tmp.dir, { systemd: true });
    const res = spawnSync(
      '/bin/sh',
      [join(dir, 'install-on-device.sh'), '--root', r, '--node', '/usr/bin/node'],
      { encoding: 'utf8' },
    );
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /checksum mismatch/);
    assert.ok(!existsSync(join(r, 'opt/lenscap')));
    assert.ok(!readFileSync(join(r, 'etc/passwd'), 'utf8').includes('lenscap'));
  });

  test('bad options are refused with a message', () => {
    const r = fakeRoot(tmp.dir);
    const res = install(['--bundle', bundle, '--root', r, '--camera-device', 'video0']);
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /--camera-device must be a \/dev path/);
    assert.notEqual(install(['--frobnicate']).status, 0);
    const help = install(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--encoder-device/);
    assert.ok(!help.stdout.includes('set -eu'));
  });
});

function readdirHas(dir: string, re: RegExp): boolean {
  return spawnSync('ls', ['-A', dir], { encoding: 'utf8' })
    .stdout.split('\n')
    .some((n) => re.test(n));
}
