/** ffmpeg binary resolution order: config, FFMPEG_PATH, PATH, the optional installer package. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveFfmpegPath } from '../../agent/stream/ffmpeg-path.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { makeTempDir } from '../../harness/tmp.ts';

test('config, then FFMPEG_PATH, then PATH, then @ffmpeg-installer/ffmpeg', () => {
  const tmp = makeTempDir();
  try {
    const mk = (p: string) => {
      mkdirSync(join(tmp.dir, p, '..'), { recursive: true });
      writeFileSync(join(tmp.dir, p), '#!/bin/sh\n');
      chmodSync(join(tmp.dir, p), 0o755);
      return join(tmp.dir, p);
    };
    const cfg = mk('cfg/ffmpeg');
    const envP = mk('env/ffmpeg');
    const onPath = mk('bin/ffmpeg');
    const pkg = mk('pkg/ffmpeg');
    const env = { FFMPEG_PATH: envP, PATH: join(tmp.dir, 'bin') };
    assert.deepEqual(resolveFfmpegPath({ configPath: cfg, env, loadInstaller: () => pkg }), {
      path: cfg,
      source: 'config',
    });
    assert.deepEqual(resolveFfmpegPath({ env, loadInstaller: () => pkg }), {
      path: envP,
      source: 'FFMPEG_PATH',
    });
    assert.deepEqual(resolveFfmpegPath({ env: { PATH: env.PATH }, loadInstaller: () => pkg }), {
      path: onPath,
      source: 'PATH',
    });
    assert.deepEqual(resolveFfmpegPath({ env: { PATH: '/nonexistent' }, loadInstaller: () => pkg }), {
      path: pkg,
      source: '@ffmpeg-installer/ffmpeg',
    });
    assert.throws(
      () => resolveFfmpegPath({ env: { PATH: '/nonexistent' }, loadInstaller: () => undefined }),
      (e: unknown) => isLenscapError(e, 'ERR_FFMPEG_NOT_FOUND'),
    );
    assert.throws(
      () => resolveFfmpegPath({ configPath: join(tmp.dir, 'nope'), env }),
      (e: unknown) => isLenscapError(e, 'ERR_FFMPEG_NOT_FOUND'),
    );
    // The real optional package, when installed here, resolves to an executable.
    const real = resolveFfmpegPath({ env: { PATH: '/nonexistent' } });
    assert.equal(real.source, '@ffmpeg-installer/ffmpeg');
  } finally {
    tmp.cleanup();
  }
});
