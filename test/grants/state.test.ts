/**
 * What the gate keeps on disk: the replay cache (survives a restart, fails closed when corrupt or
 * full) and the audit decision log (every decision, never the token, bounded by rotation, and an
 * accept that cannot be audited is a refusal).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { createGrantGate } from '../../agent/grants/grant-gate.ts';
import type { Decision } from '../../agent/grants/types.ts';
import { DecisionLog } from '../../agent/audit/decision-log.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { makeGrantFixture, NOW_MS, SERIAL, type GrantFixture } from '../../harness/grants-fixture.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const view = { source: 'gate:127.0.0.1', purpose: 'view' as const };

function restart(f: GrantFixture, grants: Record<string, unknown> = {}) {
  const { config } = loadConfig(undefined, {});
  return createGrantGate({
    serial: SERIAL,
    grants: { ...config.grants, ...grants },
    relayAllowList: [],
    paths: f.paths,
    clock: f.clock,
    logger: silentLogger(),
    events: new MemoryEventSink(),
    isPrivacyOn: () => false,
  });
}
const reasonOf = (d: Decision) => (d.ok ? 'accepted' : d.reason);

test('a used grant stays used across a restart, until it expires', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const token = f.mint({ ttlSeconds: 300 });
  assert.equal(reasonOf(await f.gate.decide(token, view)), 'accepted');
  f.gate.close();

  const again = restart(f);
  t.after(() => again.close());
  assert.equal(reasonOf(await again.decide(token, view)), 'replayed');
  // A different grant for the same viewer is fine.
  assert.equal(reasonOf(await again.decide(f.mint(), view)), 'accepted');
  // Past exp + tolerance the id is forgotten, and the grant is refused as expired anyway.
  f.clock.advance((300 + 31) * 1000);
  assert.equal(reasonOf(await again.decide(token, view)), 'expired');
  f.clock.set(NOW_MS);
});

test('a corrupt replay cache refuses every grant issued before the loss, also after another restart', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const before = f.mint();
  assert.equal(reasonOf(await f.gate.decide(f.mint(), view)), 'accepted');
  f.gate.close();
  writeFileSync(f.paths.replayCache, '{"entries": [["torn');

  f.clock.advance(60_000);
  const g1 = restart(f);
  assert.equal(
    reasonOf(await g1.decide(before, view)),
    'replayed',
    'issued before the loss: may have been used',
  );
  assert.equal(
    reasonOf(await g1.decide(f.mint(), view)),
    'replayed',
    'issued within the tolerance of the loss',
  );
  f.clock.advance(31_000);
  const fresh = f.mint();
  assert.equal(reasonOf(await g1.decide(fresh, view)), 'accepted');
  g1.close();

  // The loss is remembered on disk: a second restart cannot launder the old grant.
  const g2 = restart(f);
  assert.equal(reasonOf(await g2.decide(before, view)), 'replayed');
  assert.equal(reasonOf(await g2.decide(fresh, view)), 'replayed');
  g2.close();
});

test('a replay cache full of live ids refuses new grants (rate_limited) rather than forget one', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  f.gate.close();
  const small = restart(f, { replayCacheMaxEntries: 3 });
  t.after(() => small.close());
  for (let i = 0; i < 3; i++)
    assert.equal(reasonOf(await small.decide(f.mint({ ttlSeconds: 60 }), view)), 'accepted');
  const d = await small.decide(f.mint({ ttlSeconds: 60 }), view);
  assert.equal(reasonOf(d), 'rate_limited');
  // Once the earlier ids can no longer be valid, there is room again.
  f.clock.advance(91_000);
  assert.equal(reasonOf(await small.decide(f.mint({ ttlSeconds: 60 }), view)), 'accepted');
  f.clock.set(NOW_MS);
});

test('the audit log has every decision with its facts and never the token', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const tokens = [
    f.mint(),
    f.mint({ serial: 'CAM-0002' }),
    f.mint({ viewer: 'mallory' }),
    'garbage.token.here',
    f.mint({ relay: 'rtmp://127.0.0.1/live/x' }),
  ];
  const ok = await f.gate.decide(tokens[0], view);
  assert.ok(ok.ok);
  for (const tk of tokens.slice(1)) await f.gate.decide(tk, view);
  await f.gate.decide(undefined, { source: 'mqtt:stream.start', purpose: 'push' });

  const text = readFileSync(f.paths.auditLog, 'utf8');
  const lines = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 6);
  assert.deepEqual(
    lines.map((l) => (l.decision === 'accept' ? 'accept' : l.reason)),
    ['accept', 'wrong_audience', 'viewer_not_bound', 'malformed', 'scope_not_allowed', 'missing'],
  );
  assert.equal(lines[0]!.jti, ok.ok && ok.claims.jti);
  assert.equal(lines[0]!.sub, 'alice');
  assert.equal(lines[0]!.aud, SERIAL);
  assert.equal(lines[0]!.source, 'gate:127.0.0.1');
  assert.equal(lines[1]!.aud, 'CAM-0002', 'the misrouted serial is in the audit line');
  assert.equal(lines[5]!.source, 'mqtt:stream.start');
  for (const tk of tokens) {
    const [h, p, s] = tk.split('.');
    assert.ok(!text.includes(tk), 'whole token in the audit log');
    if (p && p.length > 8) assert.ok(!text.includes(p), 'token payload in the audit log');
    if (s && s.length > 8) assert.ok(!text.includes(s), 'token signature in the audit log');
    void h;
  }
  assert.equal(statSync(f.paths.auditLog).mode & 0o777, 0o600);
});

test('the audit log rotates by size and keeps one previous generation', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const file = `${dir}/audit/decisions.jsonl`;
  const log = new DecisionLog(file, 4096);
  const line = {
    at: new Date(NOW_MS).toISOString(),
    decision: 'refuse' as const,
    reason: 'malformed',
    source: 'gate:x',
    purpose: 'view',
  };
  // Some lines durable (accepts), their flushes still in flight while later lines rotate the file.
  const durable: Promise<void>[] = [];
  for (let i = 0; i < 500; i++)
    if (i % 50 === 0) durable.push(log.appendDurable({ ...line, jti: `j${i}` }));
    else log.append({ ...line, jti: `j${i}` });
  await Promise.all(durable);
  log.close();
  assert.ok(existsSync(`${file}.1`));
  assert.ok(statSync(file).size <= 4096);
  assert.ok(statSync(`${file}.1`).size <= 4096);
  const last = readFileSync(file, 'utf8').trim().split('\n').at(-1)!;
  assert.equal((JSON.parse(last) as { jti: string }).jti, 'j499');
  // Reopening appends to the current file (survives restarts).
  const again = new DecisionLog(file, 4096);
  await again.appendDurable({ ...line, jti: 'after-restart' });
  again.close();
  assert.match(readFileSync(file, 'utf8'), /after-restart/);
});

test('an accept that cannot be audited is a refusal, and the grant is not left open', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  // The log path taken by a directory: the open fails (also as root, which ignores file modes).
  mkdirSync(f.paths.auditLog, { recursive: true });
  const token = f.mint();
  const d = await f.gate.decide(token, view);
  // The camera's fault, not the caller's: `internal`, so the cloud's alarm stays truthful.
  assert.equal(reasonOf(d), 'internal');
  assert.equal(f.events.events.at(-1)?.type, 'grant_refused');
  assert.equal(f.events.events.at(-1)?.reason, 'internal');
  // Fail closed in the other direction too: the jti was burnt, so the same grant cannot try again.
  rmSync(f.paths.auditLog, { recursive: true });
  assert.equal(reasonOf(await f.gate.decide(token, view)), 'replayed');
});

test('the audit log is never opened through a symlink: the accept is refused, the target untouched', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const elsewhere = `${f.dir}/elsewhere.jsonl`;
  writeFileSync(elsewhere, 'x\n');
  mkdirSync(dirname(f.paths.auditLog), { recursive: true });
  symlinkSync(elsewhere, f.paths.auditLog);
  const d = await f.gate.decide(f.mint(), view);
  assert.equal(reasonOf(d), 'internal');
  assert.equal(readFileSync(elsewhere, 'utf8'), 'x\n', 'nothing written through the link');
  assert.ok(lstatSync(f.paths.auditLog).isSymbolicLink(), 'the link itself is left for the operator');
  // The control: with a regular file in its place, the same kind of grant is accepted and audited.
  rmSync(f.paths.auditLog);
  const g = restart(f);
  t.after(() => g.close());
  assert.equal(reasonOf(await g.decide(f.mint(), view)), 'accepted');
  assert.match(readFileSync(f.paths.auditLog, 'utf8'), /"decision":"accept"/);
});

test('a flood of unsigned junk is counted, not recorded line by line; signed refusals always go out; counts are never lost', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const a = { source: 'gate:10.0.0.1', purpose: 'view' as const };
  const b = { source: 'gate:10.0.0.2', purpose: 'view' as const };
  for (let i = 0; i < 500; i++) await f.gate.decide(`junk${i}`, a);
  await f.gate.decide('junk', b);
  // The misroute alarm and other signed refusals in the middle of the flood, each one recorded.
  await f.gate.decide(f.mint({ serial: 'CAM-0002' }), a);
  await f.gate.decide(f.mint({ serial: 'CAM-0003' }), a);
  await f.gate.decide(f.mint({ viewer: 'mallory' }), a);
  const refused = () => f.events.events.filter((e) => e.type === 'grant_refused');
  assert.deepEqual(
    refused().map((e) => `${e.source} ${e.reason}${e.claimedAud ? ` ${e.claimedAud}` : ''}`),
    [
      'gate:10.0.0.1 malformed',
      'gate:10.0.0.2 malformed',
      'gate:10.0.0.1 wrong_audience CAM-0002',
      'gate:10.0.0.1 wrong_audience CAM-0003',
      'gate:10.0.0.1 viewer_not_bound CAM-0001',
    ],
  );
  assert.equal(f.gate.counters.refused, 504, 'metrics count every refusal');

  // After the window, the next junk from that source is recorded and carries the count.
  f.clock.advance(10_000);
  await f.gate.decide('junk-again', a);
  const summary = refused().find((e) => e.data?.suppressed !== undefined);
  assert.equal(summary?.data?.suppressed, 499);
  assert.equal(summary?.source, 'gate:10.0.0.1');
  assert.equal(refused().at(-1)?.reason, 'malformed');

  // Shutdown flushes what is still being counted.
  await f.gate.decide('junk-more', a);
  await f.gate.decide('junk-more2', a);
  f.gate.close();
  assert.equal(refused().at(-1)?.data?.suppressed, 2);
  const lines = readFileSync(f.paths.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { suppressed?: number });
  assert.equal(
    lines.reduce((n, l) => n + 1 + (l.suppressed ?? 0) - (l.suppressed ? 1 : 0), 0),
    504 + 3,
    'audit lines plus counted refusals = every decision',
  );
  f.clock.set(NOW_MS);
});

test('one fsync per accept: the audit accept line is the replay record — kept across a crash, rotations and a torn tail', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  f.gate.close();
  rmSync(f.paths.replayCache, { force: true });
  // A small audit log, so accepts rotate through several generations (only one .1 is kept).
  const small = createGrantGate({
    serial: SERIAL,
    grants: loadConfig(undefined, {}).config.grants,
    relayAllowList: [],
    paths: f.paths,
    clock: f.clock,
    logger: silentLogger(),
    events: new MemoryEventSink(),
    isPrivacyOn: () => false,
    auditMaxBytes: 1024,
  });
  const used: string[] = [];
  for (let i = 0; i < 20; i++) {
    const tk = f.mint();
    assert.equal(reasonOf(await small.decide(tk, view)), 'accepted');
    used.push(tk);
  }
  assert.ok(existsSync(`${f.paths.auditLog}.1`), 'the audit log rotated');
  // "Crash": no close(), so no shutdown snapshot; a power cut also tore the last line.
  writeFileSync(
    f.paths.auditLog,
    readFileSync(f.paths.auditLog, 'utf8') +
      '{"at":"2026-11-20T00:00:00.000Z","decision":"accept","jti":"tor',
  );
  const after = restart(f);
  for (const tk of used) assert.equal(reasonOf(await after.decide(tk, view)), 'replayed');
  // The torn line did not make the cache "lost": a fresh grant is accepted.
  assert.equal(reasonOf(await after.decide(f.mint(), view)), 'accepted');
  after.close();
  // Reopened after the torn tail, the log marked it; yet another restart still reads cleanly.
  assert.match(readFileSync(f.paths.auditLog, 'utf8'), /cut mid-write/);
  const again = restart(f);
  t.after(() => again.close());
  assert.equal(reasonOf(await again.decide(used[0], view)), 'replayed');
  assert.equal(reasonOf(await again.decide(f.mint(), view)), 'accepted');
});

test('an unreadable accept line in the middle of the audit log counts as a lost replay record', async (t) => {
  const f = await makeGrantFixture();
  t.after(f.cleanup);
  const before = f.mint();
  assert.equal(reasonOf(await f.gate.decide(f.mint(), view)), 'accepted');
  assert.equal(reasonOf(await f.gate.decide(f.mint(), view)), 'accepted');
  f.gate.close();
  rmSync(f.paths.replayCache, { force: true });
  const lines = readFileSync(f.paths.auditLog, 'utf8').split('\n');
  lines[0] = lines[0]!.slice(0, 30);
  writeFileSync(f.paths.auditLog, lines.join('\n'));
  f.clock.advance(60_000);
  const g = restart(f);
  t.after(() => g.close());
  assert.equal(reasonOf(await g.decide(before, view)), 'replayed');
  f.clock.advance(31_000);
  assert.equal(reasonOf(await g.decide(f.mint(), view)), 'accepted');
  f.clock.set(NOW_MS);
});
