/**
 * The upload side as one service for the composition root: the queue (the ArtifactSink the event
 * side is given), the `upload.url` command, the transfer over the cloud link, resumed whenever the
 * link comes (back) online. Must never start uploading before start() nor keep a timer after stop().
 */
import type { EventSink } from '../audit/events.ts';
import { unrefTimer, type Random, type Time } from '../clock.ts';
import type { CloudLink } from '../cloud/link.ts';
import type { CommandRegistry } from '../cloud/commands.ts';
import type { Config } from '../config/schema.ts';
import { LenscapError } from '../errors.ts';
import type { ArtifactSink } from '../events/artifact.ts';
import type { Logger } from '../log.ts';
import { nodeUploadFs } from './fs.ts';
import { loadCa } from './put.ts';
import { UploadQueue, type UploadFs, type UploadStatus, type UploadTimers } from './queue.ts';
import { createTransfer } from './transfer.ts';
import { createUploadUrlClient } from './upload-url.ts';

export interface UploadServiceDeps {
  config: Pick<Config, 'uploads'>;
  /** paths.uploadIndex */
  indexFile: string;
  /** Where the event side writes sealed files (`<state dir>/events/spool`). */
  spoolDir: string;
  serial: string;
  /** The time seam: the queue's clock and every retry and timeout. */
  clock: Time;
  random: Random;
  logger: Logger;
  events: EventSink;
  /** The cloud link, once built (undefined: no cloud; artifacts stay queued). */
  link: () => Pick<CloudLink, 'isOnline' | 'publishData' | 'on' | 'off'> | undefined;
  fs?: UploadFs;
}

export interface UploadService {
  sink: ArtifactSink;
  queue: UploadQueue;
  registerCommands(registry: CommandRegistry): void;
  start(): void;
  stop(): Promise<void>;
  status(): UploadStatus;
}

export function createUploadService(deps: UploadServiceDeps): UploadService {
  const cfg = deps.config.uploads;
  // Retries, URL-request and PUT timeouts run on the agent's one time seam (tests drive it); a
  // pending retry never holds the process up.
  const timers: UploadTimers = {
    setTimeout: (fn, ms) => {
      const h = deps.clock.setTimeout(fn, ms);
      unrefTimer(h);
      return h;
    },
    clearTimeout: (h) => deps.clock.clearTimeout(h),
  };
  const offline = () => new LenscapError('ERR_UPLOAD_OFFLINE', 'no cloud link');
  const urls = createUploadUrlClient({
    publish: async (op, payload) => {
      const l = deps.link();
      if (!l) throw offline();
      await l.publishData({ kind: 'request', op }, payload);
    },
    timers,
    timeoutMs: cfg.urlTimeoutMs,
    logger: deps.logger,
  });
  const transfer = createTransfer({
    urls,
    uploadHost: cfg.host,
    ca: loadCa(cfg.ca),
    putTimeoutMs: cfg.putTimeoutMs,
    publishMotion: async (meta) => {
      const l = deps.link();
      if (!l) throw offline();
      await l.publishData({ kind: 'motion' }, meta);
    },
    clock: deps.clock,
  });
  let started = false;
  const queue = UploadQueue.open({
    file: deps.indexFile,
    spoolDir: deps.spoolDir,
    serial: deps.serial,
    bounds: { maxBytes: cfg.maxBytes, maxCount: cfg.maxCount, minFreeBytes: cfg.minFreeBytes },
    retry: cfg.retry,
    clock: deps.clock,
    random: deps.random,
    timers,
    logger: deps.logger,
    events: deps.events,
    fs: deps.fs ?? nodeUploadFs,
    transfer,
    // Without a configured host there is nowhere to upload: the queue waits as if offline (bounded
    // as always) instead of failing every backoff; config is read at start, so a restart resumes.
    isOnline: () => started && !!cfg.host && (deps.link()?.isOnline() ?? false),
  });
  const onOnline = () => queue.online();
  return {
    sink: queue,
    queue,
    registerCommands: (registry) => urls.register(registry),
    start() {
      if (started) return;
      started = true;
      if (!cfg.host)
        deps.logger.warn(
          { code: 'ERR_UPLOAD_NOT_CONFIGURED' },
          'uploads.host is not set: sealed artifacts stay queued (within the queue bounds) until it is',
        );
      const l = deps.link();
      l?.on('online', onOnline);
      if (l?.isOnline()) queue.online();
    },
    async stop() {
      started = false;
      deps.link()?.off('online', onOnline);
      await queue.close();
    },
    status: () => queue.status(),
  };
}
