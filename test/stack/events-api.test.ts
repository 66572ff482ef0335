/**
 * The page's Events endpoints without a browser (so a Node-only machine checks them too): a user's
 * listing holds only cameras they are a member of, newest first; a correct cloud refuses a
 * non-member even the ciphertext (403); "Wave at the camera" validates and switches the real test
 * pattern hook file on then off; the incident button's mixed-up cache lists and serves another
 * user's artifacts byte for byte (ciphertext only: it has no key).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../agent/log.ts';
import { mixedUpListing } from '../../scripts/dev-cloud/event-cache.ts';
import { createEventsApi, type EventsReply } from '../../scripts/dev-cloud/page-events-api.ts';
import type { MotionRecord } from '../../scripts/dev-cloud/uploads.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { waitUntil } from '../../harness/wait.ts';

const OWNERS: Record<string, string> = { 'CAM-A': 'alice', 'CAM-B': 'bob' };

function rec(serial: string, n: number, kind: 'snapshot' | 'clip'): MotionRecord {
  const id = `${serial}-e${n}-${kind === 'clip' ? 'clip' : 'snap'}`;
  return {
    v: 1,
    id,
    eventId: `e${n}`,
    kind,
    serial,
    startedAt: n,
    durationMs: kind === 'clip' ? 4000 : 0,
    size: 3,
    sha256: '0'.repeat(64),
    contentType: kind === 'clip' ? 'video/mp4' : 'image/jpeg',
    sealedTo: [`kid-${OWNERS[serial]}`],
    membershipVersion: 1,
    key: `${serial}/${id}.sealed`,
    uploadedAt: n,
    receivedAt: new Date(n).toISOString(),
  };
}

const records = [
  rec('CAM-A', 1, 'snapshot'),
  rec('CAM-A', 1, 'clip'),
  rec('CAM-B', 2, 'snapshot'),
  rec('CAM-A', 3, 'snapshot'),
];

const relayed: Array<{ serial: string; op: string; payload: unknown }> = [];

function api(motionFiles: Record<string, string> = {}) {
  return createEventsApi({
    command: async (serial, op, payload) => {
      relayed.push({ serial, op, payload });
      return { id: 'c1', status: 'ok', data: { enabled: (payload as { enabled: boolean }).enabled } };
    },
    uploads: {
      motion: () => records,
      fetch: async (key) => Buffer.from(`sealed:${key}`),
    },
    users: () => ['alice', 'bob', 'mallory'],
    hasCamera: (s) => s in OWNERS,
    mayView: (u, s) => OWNERS[s] === u,
    ownerOf: (s) => OWNERS[s],
    motionFile: (s) => motionFiles[s],
    logger: silentLogger(),
  });
}

const get = (a: ReturnType<typeof api>, path: string) =>
  a.handle('GET', new URL(path, 'http://x'), async () => ({}));
const post = (a: ReturnType<typeof api>, path: string, body: Record<string, unknown>) =>
  a.handle('POST', new URL(path, 'http://x'), async () => body);
const json = (r: EventsReply | undefined) => r as { status: number; body: Record<string, unknown> };

test('listing: members only, newest first, each with the URL of its sealed bytes', async () => {
  const a = api();
  const r = json(await get(a, '/api/motion?user=alice'));
  assert.equal(r.status, 200);
  const items = r.body.items as Array<{ id: string; serial: string; url: string; owner: string }>;
  assert.deepEqual(
    items.map((i) => i.id),
    ['CAM-A-e3-snap', 'CAM-A-e1-clip', 'CAM-A-e1-snap'],
  );
  assert.equal(items[0]!.url, '/api/artifact?user=alice&id=CAM-A-e3-snap');
  assert.equal(items[0]!.owner, 'alice');
  assert.deepEqual(json(await get(a, '/api/motion?user=mallory')).body.items, []);
  assert.equal(json(await get(a, '/api/motion?user=eve')).status, 404);

  const bytes = await get(a, '/api/artifact?user=alice&id=CAM-A-e1-clip');
  assert.ok(bytes && 'bytes' in bytes);
  assert.equal(bytes.bytes.toString(), 'sealed:CAM-A/CAM-A-e1-clip.sealed');
  const refused = json(await get(a, '/api/artifact?user=bob&id=CAM-A-e1-clip'));
  assert.deepEqual([refused.status, refused.body.error], [403, 'not_a_member']);
  assert.equal(json(await get(a, '/api/artifact?user=alice&id=nope')).status, 404);
  assert.equal(await get(a, '/api/other'), undefined, 'other paths are left to the next handler');
  a.close();
});

test('the mixed-up cache: another user’s snapshots and clips under the asker’s name, same bytes', async () => {
  assert.deepEqual(
    mixedUpListing(records, 'bob', (s) => OWNERS[s]).map((r) => r.id),
    ['CAM-A-e3-snap', 'CAM-A-e1-clip', 'CAM-A-e1-snap'],
  );
  assert.deepEqual(
    mixedUpListing(records, 'alice', (s) => OWNERS[s]).map((r) => r.id),
    ['CAM-B-e2-snap'],
  );
  assert.deepEqual(
    mixedUpListing(records, 'bob', () => undefined),
    [],
    'unclaimed cameras are nobody’s to mix up',
  );
  const a = api();
  const r = json(await post(a, '/api/incident/events', { user: 'bob' }));
  assert.equal(r.body.servedTo, 'bob');
  const items = r.body.items as Array<{ id: string; url: string; owner: string }>;
  assert.deepEqual(
    items.map((i) => i.owner),
    ['alice', 'alice', 'alice'],
  );
  const served = await get(a, items[1]!.url);
  assert.ok(served && 'bytes' in served);
  assert.equal(served.bytes.toString(), 'sealed:CAM-A/CAM-A-e1-clip.sealed', 'the very object, still sealed');
  assert.equal(json(await post(a, '/api/incident/events', { user: 'eve' })).status, 404);
  a.close();
});

test('Wave at the camera: validated, switches the real hook file on, then off', async (t) => {
  const tmp = makeTempDir('lenscap-wave-');
  t.after(() => tmp.cleanup());
  const file = join(tmp.dir, 'camera', 'testpattern-motion');
  const a = api({ 'CAM-A': file });
  assert.equal(json(await post(a, '/api/motion/now', { serial: 'CAM-X' })).status, 404);
  assert.equal(json(await post(a, '/api/motion/now', { serial: 'CAM-B' })).body.error, 'no_motion_hook');
  for (const seconds of [0, 11, 1.5, 'x'])
    assert.equal(
      json(await post(a, '/api/motion/now', { serial: 'CAM-A', seconds })).status,
      400,
      String(seconds),
    );
  assert.deepEqual(json(await post(a, '/api/motion/now', { serial: 'CAM-A', seconds: 1 })).body, {
    serial: 'CAM-A',
    seconds: 1,
  });
  assert.notEqual(readFileSync(file, 'utf8'), '', 'motion on');
  await waitUntil(() => readFileSync(file, 'utf8') === '', 5000, 'motion off after the given seconds', {
    stepMs: 100,
  });
  // close() switches a pending one off at once.
  await post(a, '/api/motion/now', { serial: 'CAM-A', seconds: 10 });
  a.close();
  assert.equal(readFileSync(file, 'utf8'), '');
});

test('the events switch: the owner only, a boolean only, relayed as cmd/events', async () => {
  const a = api();
  const send = (body: Record<string, unknown>) => post(a, '/api/events/switch', body).then(json);
  assert.deepEqual((await send({ user: 'bob', serial: 'CAM-A', enabled: true })).body, {
    error: 'not_owner',
    message: 'only the owner of CAM-A switches its events',
  });
  assert.equal((await send({ user: 'alice', serial: 'CAM-A', enabled: 'yes' })).status, 400);
  assert.equal((await send({ user: 'alice', serial: 'CAM-X', enabled: true })).status, 404);
  assert.deepEqual(relayed, [], 'nothing relayed for a refused switch');
  const ok = await send({ user: 'alice', serial: 'CAM-A', enabled: true });
  assert.deepEqual(ok, { status: 200, body: { serial: 'CAM-A', status: { enabled: true } } });
  assert.deepEqual(relayed, [{ serial: 'CAM-A', op: 'events', payload: { enabled: true } }]);
  a.close();
});
