/**
 * The viewer page's Events endpoints (issue 16): the motion metadata cameras published on
 * `lenscap/v1/<serial>/motion` for a user's cameras, the sealed artifacts from the object store
 * (ciphertext: the page opens them with the user's own key), "Wave at the camera" (the test
 * pattern's motion hook, the dev stand-in for someone walking past), the owner's events switch
 * (relayed as `cmd/events`, owner only), the third incident button —
 * a cache that mixed up users hands another user's thumbnails and clips to the asker — and the
 * browser bundle of the artifact opener (`/artifacts.js`).
 * Must never decrypt anything (the cloud has no key), change the bytes it serves, nor hand out an
 * artifact of a camera the user is not a member of outside the incident button's cache.
 */
import type http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { setTestPatternMotion } from '../../drivers/camera/testpattern.ts';
import type { Logger } from '../../agent/log.ts';
import { mixedUpListing } from './event-cache.ts';
import type { CloudClient } from './cloud-client.ts';
import type { DevUploads, MotionRecord } from './uploads.ts';

type Json = Record<string, unknown>;
export type EventsReply = { status: number; body: unknown } | { status: 200; bytes: Buffer };

export interface EventsApiDeps {
  uploads: Pick<DevUploads, 'motion' | 'fetch'>;
  users: () => string[];
  hasCamera(serial: string): boolean;
  /** The owner-signed membership's members (or the legacy owner) may view the camera. */
  mayView(user: string, serial: string): boolean;
  /** The camera's owner (membership owner, else the cloud's record). */
  ownerOf(serial: string): string | undefined;
  /** The test pattern's motion hook file of a camera (npm start registers it), if any. */
  motionFile(serial: string): string | undefined;
  /** Relays a command to a camera (the owner's `events` switch). */
  command?: CloudClient['command'];
  logger: Logger;
}

export interface EventsApi {
  handle(method: string, url: URL, body: () => Promise<Json>): Promise<EventsReply | undefined>;
  close(): void;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const MAX_LIST = 40;
let bundle: string | undefined;

/** The artifact opener for the page (agent/sealing/artifact.ts), bundled once. */
export function artifactOpenerBundle(): string {
  bundle ??= buildSync({
    entryPoints: [join(HERE, 'artifact-open.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  }).outputFiles[0]!.text;
  return bundle;
}

export function serveArtifactOpener(path: string, res: http.ServerResponse): boolean {
  if (path !== '/artifacts.js') return false;
  const body = artifactOpenerBundle();
  res.writeHead(200, {
    'content-type': 'text/javascript; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
  return true;
}

/** What the page sees of a record: the metadata, who owns the camera, and where the bytes are. */
function view(r: MotionRecord, owner: string | undefined, url: string) {
  return {
    id: r.id,
    eventId: r.eventId,
    kind: r.kind,
    serial: r.serial,
    owner: owner ?? null,
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    size: r.size,
    sha256: r.sha256,
    contentType: r.contentType,
    sealedTo: r.sealedTo,
    membershipVersion: r.membershipVersion,
    uploadedAt: r.uploadedAt,
    url,
  };
}

export function createEventsApi(deps: EventsApiDeps): EventsApi {
  const log = deps.logger.child({ component: 'page-events' });
  const motionTimers = new Map<string, NodeJS.Timeout>();
  const bad = (error: string, message: string, status = 400): EventsReply => ({
    status,
    body: { error, message },
  });
  const userOf = (v: unknown): string | undefined =>
    typeof v === 'string' && deps.users().includes(v) ? v : undefined;
  const artifactUrl = (base: string, user: string, id: string) =>
    `${base}?user=${encodeURIComponent(user)}&id=${encodeURIComponent(id)}`;
  const record = (id: string) => deps.uploads.motion().find((r) => r.id === id);

  const bytesOf = async (r: MotionRecord): Promise<EventsReply> => {
    const bytes = await deps.uploads.fetch(r.key);
    return bytes ? { status: 200, bytes } : bad('not_stored', 'the object store has no such object', 404);
  };

  return {
    async handle(method, url, body) {
      const path = url.pathname;
      const q = url.searchParams;
      if (method === 'GET' && path === '/api/motion') {
        const user = userOf(q.get('user'));
        if (!user) return bad('unknown_user', 'pick a demo user', 404);
        const items = deps.uploads
          .motion()
          .filter((r) => deps.mayView(user, r.serial))
          .slice(-MAX_LIST)
          .reverse()
          .map((r) => view(r, deps.ownerOf(r.serial), artifactUrl('/api/artifact', user, r.id)));
        return { status: 200, body: { user, cache: 'correct', items } };
      }
      if (method === 'GET' && path === '/api/artifact') {
        const user = userOf(q.get('user'));
        const r = record(q.get('id') ?? '');
        if (!user) return bad('unknown_user', 'pick a demo user', 404);
        if (!r) return bad('unknown_artifact', 'no such artifact', 404);
        // A correct cloud hands even ciphertext only to the camera's members.
        if (!deps.mayView(user, r.serial))
          return bad('not_a_member', `${user} is not a member of ${r.serial}`, 403);
        return bytesOf(r);
      }
      if (method === 'POST' && path === '/api/motion/now') {
        const b = await body();
        const serial = typeof b.serial === 'string' ? b.serial : '';
        const seconds = b.seconds === undefined ? 3 : Number(b.seconds);
        if (!deps.hasCamera(serial)) return bad('unknown_camera', 'no such camera', 404);
        if (!Number.isInteger(seconds) || seconds < 1 || seconds > 10)
          return bad('bad_request', 'seconds must be an integer 1..10');
        const file = deps.motionFile(serial);
        if (!file)
          return bad(
            'no_motion_hook',
            `${serial} has no test pattern motion hook (events off or a real camera)`,
            409,
          );
        setTestPatternMotion(file, true);
        clearTimeout(motionTimers.get(serial));
        const t = setTimeout(() => {
          motionTimers.delete(serial);
          try {
            setTestPatternMotion(file, false);
          } catch (err) {
            log.warn({ serial, err: (err as Error).message }, 'motion hook not switched off');
          }
        }, seconds * 1000);
        t.unref();
        motionTimers.set(serial, t);
        log.info({ serial, seconds }, 'test pattern motion on');
        return { status: 200, body: { serial, seconds } };
      }
      if (method === 'POST' && path === '/api/events/switch') {
        // The owner's wish, relayed: the camera applies and keeps it (agent/events/switch.ts).
        const b = await body();
        const user = userOf(b.user);
        const serial = typeof b.serial === 'string' ? b.serial : '';
        if (!user) return bad('unknown_user', 'pick a demo user', 404);
        if (!deps.hasCamera(serial)) return bad('unknown_camera', 'no such camera', 404);
        if (typeof b.enabled !== 'boolean') return bad('bad_request', 'enabled must be true or false');
        if (deps.ownerOf(serial) !== user)
          return bad('not_owner', `only the owner of ${serial} switches its events`, 403);
        if (!deps.command) return bad('unavailable', 'no cloud link', 503);
        const r = await deps.command(serial, 'events', { enabled: b.enabled }, 10_000);
        if (r.status !== 'ok') return bad(r.error?.code ?? 'ERR_COMMAND_FAILED', r.error?.message ?? '', 409);
        return { status: 200, body: { serial, status: r.data ?? {} } };
      }
      if (method === 'POST' && path === '/api/incident/events') {
        // The third incident: the cache in front of the event listing keyed its entries without
        // the user, so the asker gets another user's thumbnails and clips (still sealed).
        const b = await body();
        const user = userOf(b.user);
        if (!user) return bad('unknown_user', 'pick a demo user', 404);
        const items = mixedUpListing(deps.uploads.motion(), user, deps.ownerOf, MAX_LIST).map((r) =>
          view(r, deps.ownerOf(r.serial), artifactUrl('/api/cache/artifact', user, r.id)),
        );
        log.warn(
          { servedTo: user, items: items.length },
          "incident: the mixed-up cache served other users' artifacts",
        );
        return { status: 200, body: { servedTo: user, cache: 'mixed-up', items } };
      }
      if (method === 'GET' && path === '/api/cache/artifact') {
        // The faulty cache: no membership check at all (that is the incident). Sealed bytes only.
        const r = record(q.get('id') ?? '');
        if (!r) return bad('unknown_artifact', 'no such artifact', 404);
        return bytesOf(r);
      }
      return undefined;
    },
    close() {
      for (const [serial, t] of motionTimers) {
        clearTimeout(t);
        const file = deps.motionFile(serial);
        if (file) setTestPatternMotion(file, false);
      }
      motionTimers.clear();
    },
  };
}

export function sendEventsReply(res: http.ServerResponse, r: EventsReply): void {
  if ('bytes' in r) {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'cache-control': 'no-store',
      'content-length': r.bytes.length,
    });
    res.end(r.bytes);
    return;
  }
  const data = JSON.stringify(r.body);
  res.writeHead(r.status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(data),
  });
  res.end(data);
}
