/**
 * The owner-held endpoints of the viewer page's API: a directory of users' PUBLIC keys (what a
 * real cloud's account service keeps so alice can add bob), relays of the claim (`claim.nonce`,
 * `claim`) and of owner-signed memberships, push grants bound to the viewer's key (the page makes
 * the DPoP proof and the cloud relays it in `cmd/stream.start`), and the incident "a confused cloud
 * adds mallory": the dev cloud signs a binding and a membership naming mallory with ITS OWN keys
 * and mints her a grant — the camera refuses all three.
 * The cloud only relays: it never sees a private key or a claim code, and signs nothing that adds
 * anyone (the incident button is the one place it tries, on purpose). Dev cloud only.
 * Must never accept a private JWK into the directory, nor log a grant or proof whole.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import { join } from 'node:path';
import { signCompact } from '../../agent/grants/jws.ts';
import { redactToken, type Logger } from '../../agent/log.ts';
import { jwkThumbprint, parseSealingJwk, parseSigningJwk } from '../../agent/owner/jwk.ts';
import { MEMBERSHIP_TYP } from '../../agent/owner/membership.ts';
import { writeFileAtomic } from '../../agent/storage/atomic-file.ts';
import type { CloudClient } from './cloud-client.ts';
import { memberJkt, readMembership, recordMembership } from './memberships.ts';
import { mintGrant, signBindingRecord } from './mint.ts';
import { loadOrCreateSigningKeys } from './signing-keys.ts';

export interface OwnerApiDeps {
  devDir: string;
  command: CloudClient['command'];
  users: () => string[];
  hasCamera(serial: string): boolean;
  /** The camera's gate URL for HTTP-FLV (what a grant for mallory is presented to). */
  flvUrl(serial: string): string;
  /** Push relay: where a camera pushes (rtmp) and where viewers read it (HTTP-FLV). */
  relay?: { pushUrl(serial: string): string; httpBase: string };
  logger: Logger;
}

export interface PublicKeys {
  user: string;
  jwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
  hpke: { kty: 'OKP'; crv: 'X25519'; x: string };
  jkt: string;
  kid: string;
}

type Json = Record<string, unknown>;
type Reply = { status: number; body: unknown };

const USER_RE = /^[A-Za-z0-9._-]{1,64}$/;
const SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function directoryFile(devDir: string, user: string): string {
  return join(devDir, 'directory', `${user}.json`);
}

/** The public keys a user's device registered, or undefined. */
export function readPublicKeys(devDir: string, user: string): PublicKeys | undefined {
  if (!USER_RE.test(user)) return undefined;
  const f = directoryFile(devDir, user);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as PublicKeys) : undefined;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Relays one command; the camera's coded refusal comes back as 409 with its code. */
async function relay(deps: OwnerApiDeps, serial: string, op: string, payload: Json): Promise<Reply> {
  const r = await deps.command(serial, op, payload, 10_000);
  if (r.status === 'ok') return { status: 200, body: r.data ?? {} };
  return {
    status: 409,
    body: { error: r.error?.code ?? 'ERR_COMMAND_FAILED', message: r.error?.message ?? '' },
  };
}

/**
 * Answers `/api/keys`, `/api/claim*`, `/api/membership`, `/api/push*`, `/api/relay` and `/api/confused-cloud`;
 * undefined for any other path.
 */
export async function ownerApi(
  deps: OwnerApiDeps,
  method: string,
  url: URL,
  body: () => Promise<Json>,
): Promise<Reply | undefined> {
  const path = url.pathname;
  const bad = (error: string, message: string, status = 400): Reply => ({
    status,
    body: { error, message },
  });
  const camera = (serial: string): Reply | undefined =>
    !SERIAL_RE.test(serial) || !deps.hasCamera(serial)
      ? bad('unknown_camera', `no camera ${JSON.stringify(serial.slice(0, 64))}`, 404)
      : undefined;

  if (method === 'POST' && path === '/api/keys') {
    const b = await body();
    const user = str(b.user);
    if (!deps.users().includes(user)) return bad('unknown_user', 'no such user', 404);
    let jwk, hpke;
    try {
      jwk = parseSigningJwk(b.jwk, 'jwk');
      hpke = parseSealingJwk(b.hpke, 'hpke');
    } catch (err) {
      return bad('ERR_KEY_INVALID', (err as Error).message);
    }
    const rec: PublicKeys = { user, jwk, hpke, jkt: jwkThumbprint(jwk), kid: jwkThumbprint(hpke) };
    mkdirSync(join(deps.devDir, 'directory'), { recursive: true, mode: 0o700 });
    writeFileAtomic(directoryFile(deps.devDir, user), JSON.stringify(rec, null, 2), 0o644);
    deps.logger.info({ user, jkt: rec.jkt, kid: rec.kid }, 'public keys registered');
    return { status: 200, body: rec };
  }
  if (method === 'GET' && path === '/api/keys') {
    const rec = readPublicKeys(deps.devDir, str(url.searchParams.get('user')));
    return rec ? { status: 200, body: rec } : bad('no_keys', 'this user has registered no keys', 404);
  }
  if (method === 'POST' && path === '/api/claim/nonce') {
    const serial = str((await body()).serial);
    return camera(serial) ?? relay(deps, serial, 'claim.nonce', {});
  }
  if (method === 'POST' && path === '/api/claim') {
    const b = await body();
    const serial = str(b.serial);
    const no = camera(serial);
    if (no) return no;
    const r = await relay(deps, serial, 'claim', {
      nonce: str(b.nonce),
      proof: str(b.proof),
      membership: str(b.membership),
    });
    if (r.status === 200) recordMembership(deps.devDir, str(b.membership));
    return r;
  }
  if (method === 'GET' && path === '/api/membership') {
    const serial = str(url.searchParams.get('serial'));
    const rec = SERIAL_RE.test(serial) ? readMembership(deps.devDir, serial) : undefined;
    return rec ? { status: 200, body: rec } : bad('not_claimed', 'no owner-signed membership relayed', 404);
  }
  if (method === 'POST' && path === '/api/membership') {
    const b = await body();
    const serial = str(b.serial);
    const no = camera(serial);
    if (no) return no;
    const r = await relay(deps, serial, 'membership', { membership: str(b.membership) });
    if (r.status === 200) recordMembership(deps.devDir, str(b.membership));
    return r;
  }
  if (method === 'POST' && path === '/api/push') {
    // A push grant for a member, bound to the key the owner listed for them; the page proves it.
    const b = await body();
    const [user, serial] = [str(b.user), str(b.serial)];
    const no = camera(serial);
    if (no) return no;
    if (!deps.relay) return bad('no_relay', 'this dev cloud runs no relay', 409);
    const jkt = memberJkt(deps.devDir, serial, user);
    if (!jkt) return bad('not_member', `${user} is not in ${serial}'s owner-signed membership`, 403);
    const keys = await loadOrCreateSigningKeys(deps.devDir);
    const g = mintGrant(keys.issuer, {
      serial,
      viewer: user,
      ttlSeconds: 300,
      scope: 'live relay',
      relay: deps.relay.pushUrl(serial),
      jkt,
    });
    deps.logger.info({ viewer: user, serial, jti: g.jti, token: redactToken(g.token) }, 'push grant minted');
    return {
      status: 200,
      body: {
        token: g.token,
        jti: g.jti,
        exp: g.exp,
        htm: 'PUSH',
        htu: `urn:lenscap:push:${serial}`,
        flvUrl: `${deps.relay.httpBase}/live/${encodeURIComponent(serial)}.flv`,
      },
    };
  }
  if (method === 'GET' && path === '/api/relay') {
    // Where the relay serves a camera's pushed stream: anyone may read it, it is ciphertext.
    const serial = str(url.searchParams.get('serial'));
    const no = camera(serial);
    if (no) return no;
    if (!deps.relay) return bad('no_relay', 'this dev cloud runs no relay', 409);
    return {
      status: 200,
      body: { flvUrl: `${deps.relay.httpBase}/live/${encodeURIComponent(serial)}.flv` },
    };
  }
  if (method === 'POST' && path === '/api/push/start') {
    const b = await body();
    const serial = str(b.serial);
    return camera(serial) ?? relay(deps, serial, 'stream.start', { grant: str(b.token), dpop: str(b.dpop) });
  }
  if (method === 'POST' && path === '/api/confused-cloud') {
    const b = await body();
    const serial = str(b.serial) || 'CAM-DEMO-1';
    const victim = str(b.user) || 'mallory';
    const no = camera(serial);
    if (no) return no;
    return confusedCloud(deps, serial, victim);
  }
  return undefined;
}

/**
 * The incident's confused cloud: its user↔device mapping now says `victim` may view `serial`.
 * It signs what it can sign — a binding record (its binding key) and a membership (its binding key
 * again: it has no owner key) — and mints `victim` a grant bound to her registered key.
 */
async function confusedCloud(deps: OwnerApiDeps, serial: string, victim: string): Promise<Reply> {
  const keys = await loadOrCreateSigningKeys(deps.devDir);
  const pub = readPublicKeys(deps.devDir, victim);
  const binding = await relay(deps, serial, 'binding', {
    record: signBindingRecord(keys.binding, { serial, owner: victim, viewers: [] }),
  });
  const relayed = readMembership(deps.devDir, serial);
  const members = relayed
    ? ((JSON.parse(Buffer.from(relayed.jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as Json)
        .members as Json[])
    : [];
  const forged = signCompact(
    { typ: MEMBERSHIP_TYP, alg: 'EdDSA', kid: keys.binding.kid },
    {
      serial,
      epoch: relayed?.epoch ?? 'no-epoch-known',
      version: (relayed?.version ?? 0) + 1,
      iat: Math.floor(Date.now() / 1000),
      members: [...members, ...(pub ? [{ sub: victim, role: 'viewer', jwk: pub.jwk, hpke: pub.hpke }] : [])],
    },
    keys.binding.privateKey,
  );
  const membership = await relay(deps, serial, 'membership', { membership: forged });
  const g = mintGrant(keys.issuer, {
    serial,
    viewer: victim,
    ttlSeconds: 120,
    ...(pub ? { jkt: pub.jkt } : {}),
  });
  deps.logger.warn(
    { serial, victim, binding: binding.status, membership: membership.status, jti: g.jti },
    'confused cloud: tried to add a viewer with its own keys',
  );
  const outcome = (r: Reply) =>
    r.status === 200 ? { accepted: true } : { accepted: false, code: (r.body as Json).error };
  return {
    status: 200,
    body: {
      serial,
      viewer: victim,
      binding: outcome(binding),
      membership: outcome(membership),
      token: g.token,
      jti: g.jti,
      exp: g.exp,
      flvUrl: deps.flvUrl(serial),
      expect: { status: 403, reason: 'viewer_not_bound' },
    },
  };
}

/** Writes an ownerApi reply. */
export function sendReply(res: http.ServerResponse, r: Reply): void {
  const data = JSON.stringify(r.body);
  res.writeHead(r.status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(data),
  });
  res.end(data);
}
