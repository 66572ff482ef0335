/**
 * The QEMU guest image takes its package mirror from the host's own apt configuration (deb822
 * *.sources, then one-line sources.list) or LENSCAP_DEBIAN_MIRROR, and the repository names no
 * package host. Runs scripts/qemu/host-mirror.sh against fake apt directories (bash + awk only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../../harness/tmp.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts/qemu/host-mirror.sh');

function mirror(aptDir: string, env: Record<string, string> = {}) {
  const { LENSCAP_DEBIAN_MIRROR: _, ...rest } = process.env;
  const r = spawnSync('bash', [SCRIPT, aptDir], {
    encoding: 'utf8',
    timeout: 10_000,
    env: { ...rest, ...env },
  });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr };
}

function aptDir(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const tmp = makeTempDir();
  mkdirSync(join(tmp.dir, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(tmp.dir, name), text);
  return tmp;
}

test('deb822: the first enabled deb entry of a Debian release with main, not security or a foreign repo', (t) => {
  const apt = aptDir({
    'sources.list.d/a-node.sources':
      'Types: deb\nURIs: https://repo.example/node\nSuites: nodistro\nComponents: main\n',
    'sources.list.d/debian.sources': [
      '# Enabled: no entries and security suites do not count',
      'Types: deb',
      'URIs: http://off.example/debian',
      'Suites: bookworm',
      'Components: main',
      'Enabled: no',
      '',
      'Types: deb',
      'URIs: http://mirror.example/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      '',
      'Types: deb-src deb',
      'URIs: http://cache.example:3142/debian/ http://second.example/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main contrib',
      '',
    ].join('\n'),
  });
  t.after(apt.cleanup);
  assert.deepEqual(mirror(apt.dir), { code: 0, out: 'http://cache.example:3142/debian', err: '' });
});

test('one-line sources.list with options; LENSCAP_DEBIAN_MIRROR wins; none found is an error naming the variable', (t) => {
  const apt = aptDir({
    'sources.list': [
      'deb [signed-by=/k.gpg arch=amd64] http://mirror.example/debian-security bookworm-security main',
      'deb-src http://src.example/debian bookworm main',
      'deb [arch=amd64] http://mirror.example/debian trixie main non-free-firmware',
      '',
    ].join('\n'),
  });
  t.after(apt.cleanup);
  assert.equal(mirror(apt.dir).out, 'http://mirror.example/debian');
  assert.equal(
    mirror(apt.dir, { LENSCAP_DEBIAN_MIRROR: 'http://env.example/debian' }).out,
    'http://env.example/debian',
  );
  const empty = aptDir({});
  t.after(empty.cleanup);
  const r = mirror(empty.dir);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.match(r.err, /no Debian mirror .* set LENSCAP_DEBIAN_MIRROR/);
});

test('no package host name is written in the repository', () => {
  const r = spawnSync('git', ['grep', '-n', '-I', '-e', 'debian\\.org', '--', '.'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.error || r.status === 128) return; // not a git checkout (e.g. an unpacked bundle): nothing to check
  assert.equal(r.stdout, '', `package host names found:\n${r.stdout}`);
});
