/**
 * The dev cloud's API and its MQTT view, over a real aedes broker with mTLS: retained state makes a
 * camera online, a security event published by a camera reaches the page's event stream, grants
 * are minted only for an owned camera, the incident hands alice's camera-1 grant towards camera 2,
 * and a camera's `owner_reset` makes the cloud forget the membership it relayed.
 * Grants here are signed by a test key (the grant format itself is tested by the grants suite).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import http from 'node:http';
import mqtt from 'mqtt';
import { startAedesBroker, type RunningBroker } from '../../scripts/dev-cloud/broker-aedes.ts';
import { connectCloudClient, type CloudClient } from '../../scripts/dev-cloud/cloud-client.ts';
import { startApi, type MintedGrant, type RunningApi } from '../../scripts/dev-cloud/api.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { waitUntil, within } from '../../harness/wait.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memberOf, newPhoneKeys, signMembership } from '../../scripts/dev-cloud/owner-phone.ts';
import { readMembership, recordMembership } from '../../scripts/dev-cloud/memberships.ts';

const ca = DevCa.create('test device CA');
const server = ca.issueServer('broker');
const cam2 = ca.issueClient('CAM-DEMO-2');
const cloudId = ca.issueClient('lenscap-cloud');
const { privateKey } = generateKeyPairSync('ed25519');

async function testMint(serial: string, viewer: string, ttl: number): Promise<MintedGrant> {
  const iat = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'test',
    aud: serial,
    sub: viewer,
    jti: randomUUID(),
    iat,
    exp: iat + ttl,
    scope: 'live',
  };
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg: 'EdDSA', typ: 'lenscap-grant+jwt', kid: 'test' })}.${enc(claims)}`;
  const token = `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
  return { token, ...claims };
}

let broker: RunningBroker;
let cloud: CloudClient;
let api: RunningApi;

before(async () => {
  broker = await startAedesBroker({ tls: { key: server.key, cert: server.cert, ca: ca.certPem } });
  cloud = await connectCloudClient({ url: broker.url, key: cloudId.key, cert: cloudId.cert, ca: ca.certPem });
  api = await startApi({
    cloud,
    mintGrant: testMint,
    cameras: () => [
      { serial: 'CAM-DEMO-1', label: 'one', gateUrl: 'http://127.0.0.1:1' },
      { serial: 'CAM-DEMO-2', label: 'two', gateUrl: 'http://127.0.0.1:2' },
    ],
    info: () => ({ broker: 'aedes' }),
  });
});
after(async () => {
  await api?.close();
  await cloud?.close();
  await broker?.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the dev API's JSON bodies, read by each assertion
async function call(path: string, body?: object): Promise<{ status: number; json: any }> {
  const res = await fetch(
    `${api.url}${path}`,
    body
      ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
      : {},
  );
  return { status: res.status, json: await res.json() };
}

test('page and player are served', async () => {
  const page = await fetch(api.url);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Replay the incident/);
  const player = await fetch(`${api.url}/vendor/mpegts.js`);
  assert.equal(player.status, 200);
  assert.ok((await player.arrayBuffer()).byteLength > 100_000);
});

test('users, cameras of a user, grant only for an owned camera', async () => {
  const users = await call('/api/users');
  assert.deepEqual(
    users.json.map((u: { id: string }) => u.id),
    ['alice', 'bob', 'mallory'],
  );
  const cams = await call('/api/cameras?user=alice');
  assert.deepEqual(
    cams.json.map((c: { serial: string }) => c.serial),
    ['CAM-DEMO-1'],
  );
  assert.equal(cams.json[0].flvUrl, 'http://127.0.0.1:1/live/CAM-DEMO-1.flv');
  const ok = await call('/api/grant', { user: 'alice', serial: 'CAM-DEMO-1' });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.viewer, 'alice');
  assert.equal(ok.json.serial, 'CAM-DEMO-1');
  assert.ok(ok.json.exp > Date.now() / 1000);
  const refused = await call('/api/grant', { user: 'alice', serial: 'CAM-DEMO-2' });
  assert.equal(refused.status, 403);
  assert.equal(refused.json.error, 'not_owner');
  // mallory is a user (the one a confused cloud tries to add) but owns nothing and is no member.
  assert.equal((await call('/api/grant', { user: 'mallory', serial: 'CAM-DEMO-1' })).status, 403);
  assert.equal((await call('/api/grant', { user: 'nobody', serial: 'CAM-DEMO-1' })).status, 404);
});

test("incident: alice's grant for camera 1, aimed at camera 2", async () => {
  const r = await call('/api/incident', {});
  assert.equal(r.status, 200);
  assert.equal(r.json.viewer, 'alice');
  assert.equal(r.json.mintedFor, 'CAM-DEMO-1');
  assert.equal(r.json.deliveredTo, 'CAM-DEMO-2');
  assert.equal(r.json.flvUrl, 'http://127.0.0.1:2/live/CAM-DEMO-2.flv');
  assert.equal(r.json.expect.reason, 'wrong_audience');
});

test("retained state and a camera's security event reach the page's event stream", async () => {
  const received: string[] = [];
  const gotEvent = within(
    new Promise<void>((resolve, reject) => {
      const req = http.get(`${api.url}/api/stream`, (res) => {
        let buf = '';
        res.on('data', (d: Buffer) => {
          buf += d.toString();
          for (const block of buf.split('\n\n').slice(0, -1)) received.push(block);
          buf = buf.split('\n\n').pop() ?? '';
          if (received.some((b) => b.startsWith('event: security') && b.includes('wrong_audience'))) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (e) => (e.message.includes('aborted') ? undefined : reject(e)));
    }),
    20_000,
    "the security event on the page's event stream",
  );
  const dev = await mqtt.connectAsync(broker.url, {
    key: cam2.key,
    cert: cam2.cert,
    ca: ca.certPem,
    clientId: 'CAM-DEMO-2',
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  try {
    const online = cloud.waitOnline('CAM-DEMO-2', 3000);
    await dev.publishAsync('lenscap/v1/CAM-DEMO-2/state', JSON.stringify({ online: true }), {
      qos: 1,
      retain: true,
    });
    await online;
    const cams = await call('/api/cameras?user=bob');
    assert.equal(cams.json[0].online, true);
    const event = {
      type: 'grant_refused',
      at: new Date().toISOString(),
      serial: 'CAM-DEMO-2',
      reason: 'wrong_audience',
      claimedAud: 'CAM-DEMO-1',
      sub: 'alice',
    };
    await dev.publishAsync('lenscap/v1/CAM-DEMO-2/events', JSON.stringify(event), { qos: 1 });
    await gotEvent;
    const past = await call('/api/events');
    assert.equal(past.json.events.at(-1).event.reason, 'wrong_audience');
    await dev.publishAsync('lenscap/v1/CAM-DEMO-2/state', '', { qos: 1, retain: true });
  } finally {
    await dev.endAsync(true);
  }
});

test("a camera's owner_reset makes the dev cloud forget its relayed membership (no grants by the old one)", async () => {
  const devDir = mkdtempSync(join(tmpdir(), 'lenscap-api-reset-'));
  const ownerApi = await startApi({
    cloud,
    mintGrant: testMint,
    cameras: () => [{ serial: 'CAM-DEMO-2', label: 'two', gateUrl: 'http://127.0.0.1:2' }],
    owner: { devDir, command: async () => ({ id: 'x', status: 'ok', data: {} }) },
  });
  const dev = await mqtt.connectAsync(broker.url, {
    key: cam2.key,
    cert: cam2.cert,
    ca: ca.certPem,
    clientId: 'CAM-DEMO-2',
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  try {
    const bob = newPhoneKeys('bob');
    const alice = newPhoneKeys('alice');
    recordMembership(
      devDir,
      signMembership(bob, {
        serial: 'CAM-DEMO-2',
        epoch: 'epoch-of-the-old-claim',
        version: 2,
        members: [memberOf(bob, 'owner'), memberOf(alice, 'viewer')],
      }),
    );
    const get = async (path: string, body?: object) => {
      const r = await fetch(
        `${ownerApi.url}${path}`,
        body
          ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
          : {},
      );
      return r.status;
    };
    assert.equal(await get('/api/membership?serial=CAM-DEMO-2'), 200);
    assert.equal(await get('/api/grant', { user: 'alice', serial: 'CAM-DEMO-2' }), 200, 'a member before');
    const event = { type: 'owner_reset', at: new Date().toISOString(), serial: 'CAM-DEMO-2', source: 'cli' };
    await dev.publishAsync('lenscap/v1/CAM-DEMO-2/events', JSON.stringify(event), { qos: 1 });
    await waitUntil(
      async () => (await get('/api/membership?serial=CAM-DEMO-2')) === 404,
      10_000,
      'the membership forgotten after owner_reset',
      { stepMs: 100 },
    );
    assert.equal(readMembership(devDir, 'CAM-DEMO-2') ?? undefined, undefined);
    // alice was a member of the old claim only: the cloud mints her nothing now.
    assert.equal(await get('/api/grant', { user: 'alice', serial: 'CAM-DEMO-2' }), 403);
  } finally {
    await dev.endAsync(true);
    await ownerApi.close();
    rmSync(devDir, { recursive: true, force: true });
  }
});
