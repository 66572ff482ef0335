/**
 * Concurrent accepts under group commit (agent/audit/decision-log.ts): several grants decided at
 * once share one fdatasync, and still no accept is answered — no viewer gets a first byte — before
 * its own audit line (the replay record) is durable. One accept costs exactly one flush, on the
 * event loop while the disk is fast and on libuv's pool once a flush took longer than the loop
 * budget; both places are run here. The power-cut family of state.test.ts: the audit log's flush
 * is watched (the real fdatasync; on the pool held a little so accepts pile up), and a "power cut"
 * keeps only the bytes a completed flush covered; every grant whose accept was already answered
 * must come back as used after it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fdatasync, fdatasyncSync, fstatSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createGrantGate } from '../../agent/grants/grant-gate.ts';
import { flushPlace, type DecisionLogIo } from '../../agent/audit/decision-log.ts';
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

/** The log's flush clock in a test: `t` (ms) moves only by each flush's planned duration and by the test. */
interface FlushClock {
  t: number;
  /** How long each next flush "takes" (ms); 0 once empty. */
  takes: number[];
}

/**
 * The real fdatasync, recording how many bytes of the file a completed flush made durable (the
 * size when it was issued) and where each ran. On the pool each flush is held `holdMs` before it
 * is issued. `fail` makes every flush fail; `clock`, when given, is the monotonic clock the log
 * times its flushes with (otherwise the real one).
 */
function watchedIo(holdMs: number, fail?: Error, clock?: FlushClock) {
  const disk = { durable: 0, flushes: 0, onLoop: 0, onPool: 0 };
  const took = () => {
    if (clock) clock.t += clock.takes.shift() ?? 0;
  };
  const io: DecisionLogIo = {
    fdatasync(fd, done) {
      disk.flushes++;
      disk.onPool++;
      setTimeout(() => {
        if (fail) return done(fail);
        const size = fstatSync(fd).size;
        fdatasync(fd, (err) => {
          if (!err) disk.durable = Math.max(disk.durable, size);
          took();
          done(err);
        });
      }, holdMs);
    },
    fdatasyncSync(fd) {
      disk.flushes++;
      disk.onLoop++;
      if (fail) throw fail;
      const size = fstatSync(fd).size;
      fdatasyncSync(fd);
      disk.durable = Math.max(disk.durable, size);
      took();
    },
    now: clock ? () => clock.t : () => performance.now(),
    defer: (fn) => void setImmediate(fn),
  };
  return { disk, io };
}

/** `place`: 'pool' sets the loop budget to 0 (every flush on libuv's pool), 'loop' keeps the default. */
function gateWith(f: GrantFixture, io: DecisionLogIo, place: 'loop' | 'pool' = 'loop') {
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
    ...(place === 'pool' ? { auditLoopFlushBudgetMs: 0 } : {}),
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

for (const place of ['loop', 'pool'] as const)
  test(`concurrent accepts share one flush (${place}), and each is durable before it is answered; a power cut keeps every answered one used`, async (t) => {
    const f = await makeGrantFixture();
    t.after(f.cleanup);
    f.gate.close();
    rmSync(f.paths.replayCache, { force: true });
    const { disk, io } = watchedIo(20);
    const g = gateWith(f, io, place);
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
    // Decided in one turn: their lines were all written before the turn's one flush.
    assert.equal(disk.flushes, 1, `group commit: ${disk.flushes} flushes for 8 accepts of one turn`);
    assert.equal(place === 'loop' ? disk.onLoop : disk.onPool, 1);
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

for (const place of ['loop', 'pool'] as const)
  test(`a failing flush (${place}) refuses every accept waiting on it (internal), and none of those grants can be used again`, async (t) => {
    const f = await makeGrantFixture();
    t.after(f.cleanup);
    f.gate.close();
    const failing = gateWith(f, watchedIo(5, Object.assign(new Error('EIO'), { code: 'EIO' })).io, place);
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

for (const place of ['loop', 'pool'] as const)
  test(`viewers joining at once through the gate (flush on the ${place}): no first media byte before that viewer’s accept is durable`, async (t) => {
    const m = await makeMediaFixture({ mode: 'always' });
    t.after(() => m.close());
    m.f.gate.close();
    const { disk, io } = watchedIo(15);
    const grants = gateWith(m.f, io, place);
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

test('one accept is exactly one durable flush, and a lone accept on a fast disk flushes on the event loop', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  f.gate.close();
  // Flushes "take" 0 ms by the log's clock (a slow real disk under load cannot move them), and the
  // joins are 100 ms apart.
  const clock: FlushClock = { t: 0, takes: [] };
  const { disk, io } = watchedIo(0, undefined, clock);
  const g = gateWith(f, io);
  t.after(() => g.close());
  for (let i = 1; i <= 5; i++) {
    clock.t += 100;
    const d = await within(g.decide(f.mint({ ttlSeconds: 300 }), view), 5000, `accept ${i}`);
    assert.equal(reasonOf(d), 'accepted');
    assert.ok(
      durableAccepts(f.paths.auditLog, disk.durable).has((d as Extract<Decision, { ok: true }>).claims.jti),
    );
    // No thread-pool round trip on the join's path: the flush is the floor's own syscall.
    assert.deepEqual(
      { flushes: disk.flushes, onLoop: disk.onLoop },
      { flushes: i, onLoop: i },
      `accept ${i}`,
    );
  }
});

/** Decides one grant at a time, `gapMs` of the log's clock before each; where each one's flush ran. */
async function placesOf(gapsMs: number[], takesMs: number[]): Promise<string[]> {
  const f = await makeGrantFixture();
  try {
    f.gate.close();
    const clock: FlushClock = { t: 0, takes: [...takesMs] };
    const { disk, io } = watchedIo(0, undefined, clock);
    const g = gateWith(f, io);
    const places: string[] = [];
    for (const [i, gap] of gapsMs.entries()) {
      clock.t += gap;
      const before = disk.onLoop;
      const d = await within(g.decide(f.mint({ ttlSeconds: 300 }), view), 5000, `accept ${i + 1}`);
      assert.equal(reasonOf(d), 'accepted');
      places.push(disk.onLoop > before ? 'loop' : 'pool');
    }
    g.close();
    return places;
  } finally {
    f.cleanup();
  }
}

test('a flush slower than the loop budget sends the next ones to the pool; a fast one brings them back', async () => {
  // 1 ms: the next stays on the loop; 40 ms (over the 5 ms budget): the next goes to the pool;
  // that one took 2 ms: back on the loop.
  assert.deepEqual(await placesOf([100, 100, 100, 100], [1, 40, 2, 1]), ['loop', 'loop', 'pool', 'loop']);
});

test('accepts that follow the last flush closely (a burst of viewers) flush on the pool; after a pause, the loop again', async () => {
  // 0–3 ms after the previous flush ended: a burst, pipelined on the pool; 50 ms later: alone.
  assert.deepEqual(await placesOf([100, 0, 3, 50, 9, 10], [1, 1, 1, 1, 1, 1]), [
    'loop',
    'pool',
    'pool',
    'loop',
    'pool',
    'loop',
  ]);
});

test('flushPlace: the loop for a lone flush while the last one stayed within the budget, the pool otherwise or with no budget', () => {
  assert.equal(flushPlace(undefined, 0, 5), 'loop');
  assert.equal(flushPlace({ tookMs: 5, endedAt: 0 }, 10, 5), 'loop');
  assert.equal(flushPlace({ tookMs: 5.1, endedAt: 0 }, 100, 5), 'pool');
  assert.equal(flushPlace({ tookMs: 1, endedAt: 0 }, 9.9, 5), 'pool');
  assert.equal(flushPlace({ tookMs: 1, endedAt: 0 }, 9.9, 5, 5), 'loop');
  assert.equal(flushPlace(undefined, 0, 0), 'pool');
  assert.equal(flushPlace({ tookMs: 0.1, endedAt: 0 }, 1000, 0), 'pool');
});
