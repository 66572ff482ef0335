/**
 * Rules the test suite keeps so that `npm ci && npm test` holds on a machine with only Node 20:
 * no test or bench runs a bare `ffmpeg`/`ffprobe` or a fixed /usr/bin path (ffmpeg comes from
 * harness/ffmpeg.ts, the agent's own resolver; other programs from requires.ts, on PATH).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function grep(pattern: string): string | undefined {
  const r = spawnSync('git', ['grep', '-n', '-E', '-e', pattern, '--', 'test', 'bench', 'harness'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.error || r.status === 128) return undefined; // not a git checkout: nothing to check
  return r.stdout;
}

test('no test names a bare ffmpeg/ffprobe, a fixed /usr/bin program, or looks ffmpeg up on PATH', (t) => {
  const checks: Array<[string, string]> = [
    ['spawned by bare name', `(spawn|spawnSync|execFile|execFileSync)\\(\\s*['"](ffmpeg|ffprobe)['"]`],
    ['as the first argument on its own line', `^\\s*['"](ffmpeg|ffprobe)['"],?\\s*$`],
    ['a bare name as a path', `[Pp]ath\\s*[:=]\\s*['"]ffmpeg['"]`],
    ['a fixed path', `['"]/usr/s?bin/(ffmpeg|ffprobe|chromium|mosquitto|nginx)['"]`],
    ['a PATH-only lookup', `needs\\(['"]ffmpeg['"]\\)`],
  ];
  for (const [what, pattern] of checks) {
    const hits = grep(pattern);
    if (hits === undefined) return t.skip('not a git checkout');
    assert.equal(hits, '', `ffmpeg/programs ${what}:\n${hits}`);
  }
});
