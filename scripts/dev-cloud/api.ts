/**
 * The dev cloud's web face on 127.0.0.1: serves the viewer page (and mpegts.js from node_modules)
 * and a small JSON API — demo users and their cameras, a grant endpoint that mints a real grant
 * only for a camera the user owns, the incident replay (alice's grant for camera 1 handed to the
 * page to present to camera 2, as the mixed-up cache did), and server-sent events carrying camera
 * state, telemetry and security events. Must never listen beyond loopback, never mint for a camera
 * the user does not own, and never log a grant whole.
 */
import { serveSealedPage } from './sealed-page.ts';
import { createEventsApi, sendEventsReply, serveArtifactOpener } from './page-events-api.ts';
import type { DevUploads, MotionRecord } from './uploads.ts';
import { ownerApi, sendReply, type OwnerApiDeps } from './page-owner-api.ts';
import { forgetMembership, memberJkt, readMembership } from './memberships.ts';
import http from 'node:http';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { redactToken, silentLogger, type Logger } from '../../agent/log.ts';
import type { CameraState, CloudClient, ReceivedEvent } from './cloud-client.ts';

export interface DemoUser {
  id: string;
  name: string;
  /** Serials this user owns (the binding record names them as owner). */
  cameras: string[];
}

export const DEMO_USERS: DemoUser[] = [
  { id: 'alice', name: 'Alice', cameras: ['CAM-DEMO-1'] },
  { id: 'bob', name: 'Bob', cameras: ['CAM-DEMO-2'] },
  // Owns nothing and is in no membership: the one a confused cloud tries to add.
  { id: 'mallory', name: 'Mallory', cameras: [] },
];

export interface MintedGrant {
  token: string;
  sub: string;
  aud: string;
  jti: string;
  iat: number;
  exp: number;
}

export interface CameraInfo {
  serial: string;
  label: string;
  /** Base URL of the camera's viewer gate, e.g. http://127.0.0.1:41234 */
  gateUrl: string;
  /** The test pattern's motion hook file (npm start, events on): "Wave at the camera". */
  motionFile?: string;
}

export interface ApiDeps {
  users?: DemoUser[];
  /** Cameras the dev cloud knows (from provisioning + the generated agent configs). */
  cameras: () => CameraInfo[];
  /** Live view from MQTT: retained state, telemetry, security events. */
  cloud: Pick<CloudClient, 'camera' | 'events' | 'on' | 'off'>;
  /** Mints a real viewer grant for `viewer` on `serial`. */
  mintGrant: (serial: string, viewer: string, ttlSeconds: number) => Promise<MintedGrant>;
  /** Extra facts shown on the page (broker kind, relay URL). */
  info?: () => Record<string, unknown>;
  /**
   * Owner-held cameras: a DPoP proof for `url` with `token`, made by the user's simulated phone
   * (its key listed in the owner's membership); undefined for a legacy-mode camera.
   */
  dpopFor?: (user: string, serial: string, token: string, url: string) => string | undefined;
  /**
   * Owner-held endpoints (page-owner-api.ts): key directory, claim and membership relays, push.
   * With it, a camera with a relayed owner-signed membership grants to its members only.
   */
  owner?: Pick<OwnerApiDeps, 'devDir' | 'command' | 'relay'>;
  /** Motion events (issue 16): the cameras' `motion` metadata and the sealed artifacts. */
  uploads?: Pick<DevUploads, 'motion' | 'fetch' | 'on' | 'off'>;
  grantTtlSeconds?: number;
  host?: string;
  port?: number;
  logger?: Logger;
}

export interface RunningApi {
  url: string;
  port: number;
  close(): Promise<void>;
}

const WEB_ROOT = join(dirname(fileURLToPath(import.meta.url)), 'web');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function mpegtsPath(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const p = join(dirname(require.resolve('mpegts.js/package.json')), 'dist', 'mpegts.js');
    return existsSync(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(data),
  });
  res.end(data);
}

async function readJson(req: http.IncomingMessage, max = 16_384): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw Object.assign(new Error('body must be a JSON object'), { status: 400 });
}

export async function startApi(deps: ApiDeps): Promise<RunningApi> {
  const log = deps.logger ?? silentLogger();
  const users = deps.users ?? DEMO_USERS;
  const ttl = deps.grantTtlSeconds ?? 120;
  const mpegts = mpegtsPath();
  const sse = new Set<http.ServerResponse>();

  const devDir = deps.owner?.devDir;
  /** The owner-signed membership the cloud relayed last (the camera's word, not the cloud's). */
  const membershipOf = (serial: string) => (devDir ? readMembership(devDir, serial) : undefined) ?? undefined;
  /** Owner-held: members only. Legacy: the cloud's own record of owners. */
  const mayView = (user: DemoUser, serial: string) => {
    const m = membershipOf(serial);
    return m ? m.members.some((x) => x.sub === user.id) : user.cameras.includes(serial);
  };
  const ownerOf = (serial: string) =>
    membershipOf(serial)?.members.find((m) => m.role === 'owner')?.sub ??
    users.find((u) => u.cameras.includes(serial))?.id;
  const cameraView = (info: CameraInfo, st: CameraState | undefined) => ({
    serial: info.serial,
    label: info.label,
    owner: ownerOf(info.serial) ?? null,
    membershipVersion: membershipOf(info.serial)?.version ?? null,
    online: st?.online ?? false,
    stateAt: st?.stateAt ?? null,
    gateUrl: info.gateUrl,
    flvUrl: `${info.gateUrl}/live/${encodeURIComponent(info.serial)}.flv`,
    telemetry: st?.telemetry ?? null,
    telemetryAt: st?.telemetryAt ?? null,
  });
  const findCamera = (serial: string) => deps.cameras().find((c) => c.serial === serial);

  const broadcast = (event: string, data: unknown) => {
    const line = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of sse) res.write(line);
  };
  const onState = (c: CameraState) => {
    const info = findCamera(c.serial);
    if (info) broadcast('camera', cameraView(info, c));
  };
  const onTelemetry = (t: { serial: string; at: string; telemetry: unknown }) => broadcast('telemetry', t);
  const onEvent = (e: ReceivedEvent) => {
    // A camera reset locally has no owner and no membership: stop granting by the old one.
    if (devDir && e.event.type === 'owner_reset' && findCamera(e.serial)) forgetMembership(devDir, e.serial);
    broadcast('security', e);
  };
  // Only that something arrived: the page asks for its own user's listing.
  const onMotion = (r: MotionRecord) => broadcast('motion', { serial: r.serial, id: r.id, kind: r.kind });
  deps.uploads?.on('motion', onMotion);
  deps.cloud.on('state', onState);
  deps.cloud.on('telemetry', onTelemetry);
  deps.cloud.on('event', onEvent);
  const keepAlive = setInterval(() => {
    for (const res of sse) res.write(': keep-alive\n\n');
  }, 15_000);
  keepAlive.unref();

  const eventsApi = deps.uploads
    ? createEventsApi({
        uploads: deps.uploads,
        users: () => users.map((u) => u.id),
        hasCamera: (serial) => findCamera(serial) !== undefined,
        mayView: (user, serial) => {
          const u = users.find((x) => x.id === user);
          return u ? mayView(u, serial) : false;
        },
        ownerOf,
        motionFile: (serial) => findCamera(serial)?.motionFile,
        ...(deps.owner ? { command: deps.owner.command } : {}),
        logger: log,
      })
    : undefined;

  const grantFor = async (userId: string, serial: string) => {
    const g = await deps.mintGrant(serial, userId, ttl);
    log.info({ viewer: userId, serial, jti: g.jti, token: redactToken(g.token) }, 'grant minted');
    return g;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (req.method === 'GET' && (path === '/' || path === '/index.html'))
      return sendFile(res, join(WEB_ROOT, 'index.html'));
    if (req.method === 'GET' && /^\/(app\.js|keys\.js|owner\.js|motion\.js|style\.css)$/.test(path))
      return sendFile(res, join(WEB_ROOT, path.slice(1)));
    if (req.method === 'GET' && serveSealedPage(path, res)) return;
    if (req.method === 'GET' && serveArtifactOpener(path, res)) return;
    if (req.method === 'GET' && path === '/vendor/mpegts.js') {
      if (!mpegts) return sendJson(res, 404, { error: 'mpegts.js not installed (npm ci)' });
      return sendFile(res, mpegts);
    }
    if (req.method === 'GET' && path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && path === '/api/health') return sendJson(res, 200, { ok: true });
    if (req.method === 'GET' && path === '/api/info') return sendJson(res, 200, deps.info?.() ?? {});
    if (req.method === 'GET' && path === '/api/users') return sendJson(res, 200, users);
    if (req.method === 'GET' && path === '/api/cameras') {
      const user = users.find((u) => u.id === url.searchParams.get('user'));
      const all = deps.cameras();
      const list = user ? all.filter((c) => mayView(user, c.serial)) : all;
      return sendJson(
        res,
        200,
        list.map((c) => cameraView(c, deps.cloud.camera(c.serial))),
      );
    }
    if (req.method === 'GET' && path === '/api/events') {
      const telemetry = deps.cameras().map((c) => ({
        serial: c.serial,
        at: deps.cloud.camera(c.serial)?.telemetryAt ?? null,
        telemetry: deps.cloud.camera(c.serial)?.telemetry ?? null,
      }));
      return sendJson(res, 200, { events: deps.cloud.events().slice(-50), telemetry });
    }
    if (req.method === 'GET' && path === '/api/stream') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write('retry: 2000\n\n');
      sse.add(res);
      req.on('close', () => sse.delete(res));
      for (const c of deps.cameras())
        res.write(`event: camera\ndata: ${JSON.stringify(cameraView(c, deps.cloud.camera(c.serial)))}\n\n`);
      return;
    }
    if (req.method === 'POST' && path === '/api/grant') {
      const body = await readJson(req);
      const user = users.find((u) => u.id === body.user);
      const serial = typeof body.serial === 'string' ? body.serial : '';
      if (!user) return sendJson(res, 404, { error: 'unknown_user' });
      const cam = findCamera(serial);
      if (!cam) return sendJson(res, 404, { error: 'unknown_camera' });
      // The grant issuer's own check; the camera checks again against its signed binding record.
      if (!mayView(user, serial))
        return sendJson(res, 403, {
          error: 'not_owner',
          message: `${user.id} is not the owner or a member of ${serial}`,
        });
      const g = await grantFor(user.id, serial);
      const flvUrl = cameraView(cam, undefined).flvUrl;
      const dpop = deps.dpopFor?.(user.id, serial, g.token, flvUrl);
      const jkt = devDir ? memberJkt(devDir, serial, user.id) : undefined;
      return sendJson(res, 200, {
        ...(dpop ? { dpop } : {}),
        // The key the grant is bound to (cnf.jkt): the page proves it when it holds that key.
        ...(jkt ? { jkt } : {}),
        token: g.token,
        viewer: g.sub,
        serial: g.aud,
        jti: g.jti,
        iat: g.iat,
        exp: g.exp,
        flvUrl: cameraView(cam, undefined).flvUrl,
      });
    }
    if (req.method === 'POST' && path === '/api/incident') {
      // The incident: a cache mixing device and user ids hands alice's grant for camera 1 to the
      // session of camera 2. The page itself presents it to camera 2's gate.
      const [from, to] = [findCamera('CAM-DEMO-1'), findCamera('CAM-DEMO-2')];
      if (!from || !to) return sendJson(res, 409, { error: 'demo_cameras_missing' });
      const g = await grantFor('alice', from.serial);
      return sendJson(res, 200, {
        token: g.token,
        viewer: g.sub,
        mintedFor: g.aud,
        jti: g.jti,
        exp: g.exp,
        deliveredTo: to.serial,
        flvUrl: cameraView(to, undefined).flvUrl,
        expect: {
          status: 403,
          reason: 'wrong_audience',
          event: {
            serial: to.serial,
            type: 'grant_refused',
            reason: 'wrong_audience',
            claimedAud: from.serial,
          },
        },
      });
    }
    if (eventsApi && path.startsWith('/api/')) {
      const r = await eventsApi.handle(req.method ?? 'GET', url, () => readJson(req));
      if (r) return sendEventsReply(res, r);
    }
    if (deps.owner && path.startsWith('/api/')) {
      const r = await ownerApi(
        {
          ...deps.owner,
          users: () => users.map((u) => u.id),
          hasCamera: (serial) => findCamera(serial) !== undefined,
          flvUrl: (serial) => cameraView(findCamera(serial)!, undefined).flvUrl,
          logger: log,
        },
        req.method ?? 'GET',
        url,
        () => readJson(req),
      );
      if (r) return sendReply(res, r);
    }
    return sendJson(res, path.startsWith('/api/') ? 404 : 404, { error: 'not_found' });
  };

  const sendFile = (res: http.ServerResponse, file: string) => {
    if (!existsSync(file)) return sendJson(res, 404, { error: 'not_found' });
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error & { status?: number }) => {
      log.warn({ err: err.message, path: req.url }, 'api error');
      if (!res.headersSent)
        sendJson(res, err.status ?? 500, {
          error: err.status ? 'bad_request' : 'internal',
          message: err.message,
        });
      else res.end();
    });
  });
  const host = deps.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'viewer page and API listening');
  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      clearInterval(keepAlive);
      deps.cloud.off('state', onState);
      deps.cloud.off('telemetry', onTelemetry);
      deps.cloud.off('event', onEvent);
      deps.uploads?.off('motion', onMotion);
      eventsApi?.close();
      for (const res of sse) res.end();
      sse.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The page's HTML, for tests that check it is served. */
export function pageHtml(): string {
  return readFileSync(join(WEB_ROOT, 'index.html'), 'utf8');
}
