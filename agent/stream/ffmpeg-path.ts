/**
 * Which ffmpeg binary to run: config `stream.ffmpegPath`, then FFMPEG_PATH, then `ffmpeg` on PATH,
 * then the optional @ffmpeg-installer/ffmpeg package (so `npm ci` alone gives a working demo).
 * Resolved once and checked executable: fluent-ffmpeg crashes the process when pointed at a
 * missing binary after a success, so the path must be right before it is handed over.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { LenscapError } from '../errors.ts';

export interface FfmpegResolution {
  path: string;
  source: 'config' | 'FFMPEG_PATH' | 'PATH' | '@ffmpeg-installer/ffmpeg';
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface ResolveOptions {
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Loads the optional package; returns its binary path or undefined. */
  loadInstaller?: () => string | undefined;
}

function defaultInstaller(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return undefined;
  }
}

export function resolveFfmpegPath(opts: ResolveOptions = {}): FfmpegResolution {
  const env = opts.env ?? process.env;
  if (opts.configPath) {
    if (!executable(opts.configPath))
      throw new LenscapError(
        'ERR_FFMPEG_NOT_FOUND',
        `stream.ffmpegPath ${opts.configPath} is not executable`,
      );
    return { path: opts.configPath, source: 'config' };
  }
  if (env.FFMPEG_PATH) {
    if (!executable(env.FFMPEG_PATH))
      throw new LenscapError('ERR_FFMPEG_NOT_FOUND', `FFMPEG_PATH ${env.FFMPEG_PATH} is not executable`);
    return { path: env.FFMPEG_PATH, source: 'FFMPEG_PATH' };
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'ffmpeg'))) return { path: join(dir, 'ffmpeg'), source: 'PATH' };
  }
  const pkg = (opts.loadInstaller ?? defaultInstaller)();
  if (pkg && executable(pkg)) return { path: pkg, source: '@ffmpeg-installer/ffmpeg' };
  throw new LenscapError(
    'ERR_FFMPEG_NOT_FOUND',
    'no ffmpeg: set stream.ffmpegPath or FFMPEG_PATH, install ffmpeg, or install the optional @ffmpeg-installer/ffmpeg',
  );
}
