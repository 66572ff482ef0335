/**
 * Concurrent accepts under group commit (agent/audit/decision-log.ts): several grants decided at
 * once share one fdatasync, and still no accept is answered — no viewer gets a first byte — before
 * its own audit line (the replay record) is durable. The power-cut family of state.test.ts: the
 * audit log's flush is watched (the real fdatasync, held a little so accepts pile up), and a "power
 * cut" keeps only the bytes a completed flush covered; every grant whose accept was already
 * answered must come back as used after it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fdatasync, fstatSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createGrantGate } from '../../agent/grants/grant-gate.ts';
import type { DecisionLogIo } from '../../agent/audit/decision-log.ts';
import type { Decision } from '../../agent/grants/types.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { createGate } from '../../agent/gate/gate.ts';
import type { FlvSink } from '../../agent/stream/media-hub.ts';
import { makeGrantFixture, SERIAL, type GrantFixture } from '../../harness/grants-fixture.ts';
import { FlvClient } from '../../harness/flv-client.ts';
import { within } from '../../harness/wait.ts';
import { makeMediaFixture } from '../../harness/media-fixture.ts';

const view = { source: 'gate:127.0.0.1', purpose: 'view' as const };
const reasonOf = (d: Decision) => (d.ok ? 'accepted' : d.reason);

/**
 * The real fdatasync, each one held `holdMs` before it is issued, recording how many bytes of the
 * file a completed flush made durable (the size when it was issued). `fail` makes every flush fail.
 */
function watchedIo(holdMs: number, fail?: Error) {
  const disk = { durable: 0, flushes: 0 };
  const io: DecisionLogIo = {
    fdatasync(fd, done) {
      disk.flushes++;
      setTimeout(() => {
        if (fail) return done(fail);
        const size = fstatSync(fd).size;
        fdatasync(fd, (err) => {
          if (!err) disk.durable = Math.max(disk.durable, size);
          done(err);
        });
      }, holdMs);
    },
  };
  return { disk, io };
}

function gateWith(f: GrantFixture, io: DecisionLogIo) {
  return createGrantGate({
    serial: SERIAL,
    grants: loadConfig(undefined, {}).config.grants,
    relayAllowList: [],
    paths: f.paths,
    clock: f.clock,
    logger: silentLogger(),
    events: new MemoryEventSink(),
    isPrivacyOn: () => false,
    auditIo: io,
  });
}

/** The accept lines' jtis within the first `bytes` of the audit log. */
function durableAccepts(file: string, bytes: number): Set<string> {
  const text = readFileSync(file).subarray(0, bytes).toString('utf8');
  const out = new Set<string>();
  for (const l of text.split('\n')) {
    if (!l.endsWith('}')) continue;
    const line = JSON.parse(l) as { decision?: string; jti?: string };
    if (line.decision === 'accept' && line.jti) out.add(line.jti);
  }
  return out;
}

/** A power cut now: only what a completed flush covered survives; no shutdown snapshot either. */
function powerCut(f: GrantFixture, durableText: Buffer): void {
  writeFileSync(f.paths.auditLog, durableText);
  rmSync(f.paths.replayCache, { force: true });
}

test('concurrent accepts share one flush, and each is durable before it is answered; a power cut keeps every answered one used', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  f.gate.close();
  rmSync(f.paths.replayCache, { force: true });
  const { disk, io } = watchedIo(20);
  const g = gateWith(f, io);
  const tokens = Array.from({ length: 8 }, () => f.mint({ ttlSeconds: 300 }));
  let cutAtFirstAnswer: Buffer | undefined;
  const answered: string[] = [];
  const decisions = await within(
    Promise.all(
      tokens.map((tk) =>
        g.decide(tk, view).then((d) => {
          assert.equal(reasonOf(d), 'accepted');
          const jti = (d as Extract<Decision, { ok: true }>).claims.jti;
          // The moment the caller hears "accept" (and could send a first byte): its line is durable.
          assert.ok(
            durableAccepts(f.paths.auditLog, disk.durable).has(jti),
            `accept ${answered.length + 1} answered before its audit line was durable`,
          );
          answered.push(jti);
          cutAtFirstAnswer ??= readFileSync(f.paths.auditLog).subarray(0, disk.durable);
          return d;
        }),
      ),
    ),
    10_000,
    'eight concurrent decisions',
  );
  assert.equal(decisions.length, 8);
  // One flush for the first accept, one for the seven written while it was in flight.
  assert.ok(disk.flushes <= 2, `group commit: ${disk.flushes} flushes for 8 concurrent accepts`);
  const usedAtCut = durableAccepts(f.paths.auditLog, cutAtFirstAnswer!.length);
  assert.ok(usedAtCut.has(answered[0]!));

  // Power cut right after the first answer: what was answered by then is still used after it.
  const full = readFileSync(f.paths.auditLog);
  powerCut(f, cutAtFirstAnswer!);
  const afterFirst = gateWith(f, watchedIo(0).io);
  for (const tk of tokens) {
    const d = await afterFirst.decide(tk, view);
    // Answered before the cut → must be refused as used; the others were never answered and may
    // be accepted now (each once).
    if (usedAtCut.has(JSON.parse(Buffer.from(tk.split('.')[1]!, 'base64url').toString()).jti))
      assert.equal(reasonOf(d), 'replayed');
  }
  afterFirst.close();

  // Power cut after all eight were answered: all eight stay used.
  writeFileSync(f.paths.auditLog, full.subarray(0, disk.durable));
  rmSync(f.paths.replayCache, { force: true });
  const afterAll = gateWith(f, watchedIo(0).io);
  t.after(() => afterAll.close());
  for (const tk of tokens) assert.equal(reasonOf(await afterAll.decide(tk, view)), 'replayed');
  g.close();
});

test('a failing flush refuses every accept waiting on it (internal), and none of those grants can be used again', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  f.gate.close();
  const failing = gateWith(f, watchedIo(5, Object.assign(new Error('EIO'), { code: 'EIO' })).io);
  const tokens = Array.from({ length: 4 }, () => f.mint({ ttlSeconds: 300 }));
  const ds = await within(
    Promise.all(tokens.map((tk) => failing.decide(tk, view))),
    10_000,
    'four concurrent decisions',
  );
  assert.deepEqual(ds.map(reasonOf), ['internal', 'internal', 'internal', 'internal']);
  // Burnt in memory: a refused accept never leaves its grant open for a second try.
  for (const tk of tokens) assert.equal(reasonOf(await failing.decide(tk, view)), 'replayed');
});

test('viewers joining at once through the gate: no first media byte before that viewer’s accept is durable', async (t) => {
  const m = await makeMediaFixture({ mode: 'always' });
  t.after(() => m.close());
  m.f.gate.close();
  const { disk, io } = watchedIo(15);
  const grants = gateWith(m.f, io);
  t.after(() => grants.close());
  const { config } = loadConfig(undefined, {});
  // At the first byte each attached viewer receives: how many accepts were durable, and how many
  // viewers had their first byte so far (this one included).
  const atFirstByte: Array<{ durable: number; viewers: number }> = [];
  let firsts = 0;
  const gate = createGate({
    serial: SERIAL,
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false, maxViewers: 16 },
    grants,
    stream: {
      acquire: () => m.stream.acquire(),
      attach: (sink: FlvSink) => {
        let first = true;
        return m.stream.attach({
          write(chunk) {
            if (first) {
              first = false;
              firsts++;
              atFirstByte.push({
                durable: durableAccepts(m.f.paths.auditLog, disk.durable).size,
                viewers: firsts,
              });
            }
            sink.write(chunk);
          },
          end: () => sink.end(),
        });
      },
    },
    privacy: m.privacy,
    clock: m.f.clock,
    logger: silentLogger(),
  });
  await gate.listen();
  t.after(() => gate.close());
  const N = 6;
  const clients = Array.from({ length: N }, () =>
    FlvClient.http({
      url: `${gate.url}/live/${SERIAL}.flv`,
      headers: { authorization: `Bearer ${m.f.mint({ ttlSeconds: 120 })}` },
    }),
  );
  try {
    for (const c of clients) await c.waitForKeyframe(15_000);
  } finally {
    for (const c of clients) c.close();
  }
  assert.equal(atFirstByte.length, N);
  for (const a of atFirstByte)
    assert.ok(
      a.durable >= a.viewers,
      `viewer ${a.viewers} got a first byte with only ${a.durable} accepts durable`,
    );
  assert.ok(disk.flushes <= N, `${disk.flushes} flushes for ${N} accepts`);
});
