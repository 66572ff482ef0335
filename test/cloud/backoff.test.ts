import test from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../agent/clock.ts';
import { Backoff, dropWindowMs, type BackoffOptions } from '../../agent/cloud/backoff.ts';

const opts: BackoffOptions = {
  baseMs: 1000,
  capMs: 120_000,
  resetAfterMs: 30_000,
  initialDelayMaxMs: 10_000,
  longOutageMs: 300_000,
  dropDelayMaxMs: 0,
  authRetryMs: 900_000,
  followServerReference: false,
};

/** Random that returns the given values in turn. */
function seq(...values: number[]) {
  let i = 0;
  return () => values[i++ % values.length]!;
}

test('full jitter, capped before jittering: random(0, min(cap, base·2^n))', () => {
  const clock = new ManualClock(0);
  const b = new Backoff(opts, clock, () => 0.999999);
  const got: number[] = [];
  for (let i = 0; i < 10; i++) got.push(b.next({ kind: 'network' }).delayMs);
  // with random ≈ 1 the delay is just under the window: 1,2,4,...,64 s, then the 120 s cap
  assert.deepEqual(
    got.map((d) => Math.round(d / 1000)),
    [1, 2, 4, 8, 16, 32, 64, 120, 120, 120],
  );
  const b2 = new Backoff(opts, clock, () => 0.5);
  assert.deepEqual(
    [0, 1, 2, 3, 7, 8].map(() => b2.next({ kind: 'network' }).delayMs),
    [500, 1000, 2000, 4000, 8000, 16000],
  );
  const zero = new Backoff(opts, clock, () => 0);
  assert.equal(zero.next({ kind: 'network' }).delayMs, 0);
});

test('the counter never overflows: after 2000 failures the window is still the cap', () => {
  const b = new Backoff(opts, new ManualClock(0), () => 0.5);
  let d = 0;
  for (let i = 0; i < 2000; i++) d = b.next({ kind: 'network' }).delayMs;
  assert.equal(d, 60_000);
});

test('reset only after the connection stayed up resetAfterMs', () => {
  const clock = new ManualClock(0);
  const b = new Backoff(opts, clock, () => 0.999);
  for (let i = 0; i < 6; i++) b.next({ kind: 'network' });
  assert.equal(b.attempt, 6);
  b.connected();
  clock.advance(29_999);
  const short = b.next({ kind: 'network' });
  assert.equal(short.attempt, 7, 'a drop after 29.999 s keeps the counter growing');
  assert.ok(short.delayMs > 32_000);
  b.connected();
  clock.advance(30_000);
  const long = b.next({ kind: 'network' });
  assert.equal(long.attempt, 1, 'up for 30 s: back to the first step');
  assert.ok(long.delayMs < 1000);
});

test('initial delay after boot is random(0, initialDelayMaxMs); a long outage never retries under that window', () => {
  const clock = new ManualClock(0);
  const b = new Backoff({ ...opts, capMs: 4000 }, clock, seq(0.25, 0.999));
  const first = b.initial();
  assert.equal(first.reason, 'initial');
  assert.equal(first.delayMs, 2500);
  clock.advance(400_000);
  const after = b.next({ kind: 'network' });
  assert.ok(
    after.delayMs > 4000 && after.delayMs < 10_000,
    `long outage widens the window to the initial delay (${after.delayMs})`,
  );
});

test('server busy, quota exceeded, connection rate exceeded: pushed to the upper half of the cap', () => {
  for (const code of [0x89, 0x97, 0x9f]) {
    const b = new Backoff(opts, new ManualClock(0), () => 0);
    const d = b.next({ kind: 'connack', protocolVersion: 5, code });
    assert.equal(d.reason, 'server_busy');
    assert.equal(d.delayMs, 60_000, `0x${code.toString(16)}: at least cap/2`);
    // and the counter stays at the cap afterwards
    const next = new Backoff(opts, new ManualClock(0), () => 0.999);
    next.next({ kind: 'disconnect', code });
    assert.ok(next.next({ kind: 'network' }).delayMs > 100_000);
  }
});

test('not authorized / bad credentials stop with a coded error and retry slowly (v5 and 3.1.1)', () => {
  const cases: Array<[4 | 5, number]> = [
    [5, 0x86],
    [5, 0x87],
    [5, 0x8c],
    [4, 4],
    [4, 5],
  ];
  for (const [protocolVersion, code] of cases) {
    const b = new Backoff(opts, new ManualClock(0), () => 0);
    const d = b.next({ kind: 'connack', protocolVersion, code });
    assert.equal(d.reason, 'not_authorized');
    assert.equal(d.error?.code, 'ERR_CLOUD_NOT_AUTHORIZED');
    assert.ok(d.delayMs >= 450_000, `${protocolVersion}/${code}: slow retry ${d.delayMs}`);
  }
  // 3.1.1 code 5 is "not authorized"; under MQTT 5 the number 5 means nothing special
  const v5 = new Backoff(opts, new ManualClock(0), () => 0.5).next({
    kind: 'connack',
    protocolVersion: 5,
    code: 5,
  });
  assert.equal(v5.reason, 'backoff');
});

test('use another server / server moved: followed only when configured and a reference is given', () => {
  const off = new Backoff(opts, new ManualClock(0), () => 0.5).next({
    kind: 'connack',
    protocolVersion: 5,
    code: 0x9c,
    serverReference: 'b2.example:8883',
  });
  assert.equal(off.reason, 'backoff');
  assert.equal(off.serverReference, undefined);
  const on = new Backoff({ ...opts, followServerReference: true }, new ManualClock(0), () => 0.5);
  const d = on.next({ kind: 'disconnect', code: 0x9d, serverReference: 'b2.example:8883' });
  assert.equal(d.reason, 'server_reference');
  assert.equal(d.serverReference, 'b2.example:8883');
  assert.ok(d.delayMs < opts.baseMs);
  const noRef = on.next({ kind: 'connack', protocolVersion: 5, code: 0x9c });
  assert.equal(noRef.reason, 'backoff');
});

test('a deterministic schedule: same seed, same delays', () => {
  const mk = () => {
    let x = 42;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const b = new Backoff(opts, new ManualClock(0), rnd);
    return [b.initial().delayMs, ...Array.from({ length: 8 }, () => b.next({ kind: 'network' }).delayMs)];
  };
  assert.deepEqual(mk(), mk());
});

test('server references: host, host:port, [v6]:port; anything else ignored', async () => {
  const { parseServerReference } = await import('../../agent/cloud/link.ts');
  assert.deepEqual(parseServerReference('b2.example.com', 8883), { host: 'b2.example.com', port: 8883 });
  assert.deepEqual(parseServerReference('b2.example.com:9883 b3.example.com', 8883), {
    host: 'b2.example.com',
    port: 9883,
  });
  assert.deepEqual(parseServerReference('[::1]:8884', 8883), { host: '::1', port: 8884 });
  for (const bad of ['', 'mqtt://x', 'x:99999', 'x:0', 'evil.example/path', 'user@host'])
    assert.equal(parseServerReference(bad, 8883), undefined, bad);
});

test('a lost connection: retries are spread over dropDelayMaxMs (capped) until the next connection', () => {
  const clock = new ManualClock(0);
  const b = new Backoff({ ...opts, dropDelayMaxMs: 10_000 }, clock, () => 0.5);
  // failed attempts (never connected) keep the ordinary window
  assert.equal(b.next({ kind: 'network' }).delayMs, 500);
  b.connected();
  clock.advance(60_000);
  // a node dies under a connection that was up for a minute: random(0, 10 s), not random(0, 1 s)
  const d = b.next({ kind: 'network' });
  assert.equal(d.delayMs, 5000);
  assert.equal(d.reason, 'backoff');
  // the broker is still down: the retries stay spread (a returning broker meets no bunch)
  assert.equal(b.next({ kind: 'network' }).delayMs, 5000);
  // once the window grows past it, the ordinary schedule takes over (n = 4 → 16 s)
  assert.deepEqual(
    [0, 1, 2].map(() => b.next({ kind: 'network' }).delayMs),
    [5000, 5000, 8000],
  );
  // connected again: a failed attempt that is not a drop (no connection lost) uses the plain window
  b.connected();
  const c = new Backoff({ ...opts, dropDelayMaxMs: 10_000 }, clock, () => 0.5);
  assert.equal(c.next({ kind: 'network' }).delayMs, 500);
  // never above the cap
  const small = new Backoff({ ...opts, capMs: 2000, dropDelayMaxMs: 10_000 }, clock, () => 0.5);
  small.connected();
  clock.advance(60_000);
  assert.equal(small.next({ kind: 'network' }).delayMs, 1000);
  // 0 turns it off
  const off = new Backoff(opts, clock, () => 0.5);
  off.connected();
  clock.advance(60_000);
  assert.equal(off.next({ kind: 'network' }).delayMs, 500);
});

test('dropWindowMs: max(dropDelayMaxMs, outageSpread × time down), never above the cap', () => {
  const o = { dropDelayMaxMs: 10_000, capMs: 120_000, outageSpread: 3 };
  assert.equal(dropWindowMs(0, o), 10_000, 'the first retry after the drop: dropDelayMaxMs');
  assert.equal(dropWindowMs(2000, o), 10_000);
  assert.equal(dropWindowMs(5000, o), 15_000);
  assert.equal(dropWindowMs(30_000, o), 90_000, 'a 30 s outage: retries spread over 90 s');
  assert.equal(dropWindowMs(60_000, o), 120_000, 'capped');
  assert.equal(dropWindowMs(-5000, o), 10_000, 'a clock step back never shrinks it');
  assert.equal(dropWindowMs(30_000, { ...o, outageSpread: 0 }), 10_000, '0: off');
  assert.equal(dropWindowMs(30_000, { dropDelayMaxMs: 10_000, capMs: 120_000 }), 10_000, 'unset: off');
  assert.equal(dropWindowMs(30_000, { ...o, capMs: 2000 }), 2000, 'a short cap keeps its pace');
});

test('after a drop the retry window grows with how long the link has been down', () => {
  const clock = new ManualClock(0);
  const b = new Backoff({ ...opts, dropDelayMaxMs: 10_000, outageSpread: 3 }, clock, () => 0.5);
  b.connected();
  clock.advance(60_000);
  // the drop itself: random(0, 10 s)
  assert.equal(b.next({ kind: 'network' }).delayMs, 5000);
  clock.advance(5000);
  // 5 s down: window 15 s
  assert.equal(b.next({ kind: 'network' }).delayMs, 7500);
  clock.advance(25_000);
  // 30 s down: window 90 s (the exponential window is only 4 s at n = 2)
  assert.equal(b.next({ kind: 'network' }).delayMs, 45_000);
  clock.advance(60_000);
  assert.equal(b.next({ kind: 'network' }).delayMs, 60_000, '90 s down: the cap (120 s)');
  // back up: the next drop starts from dropDelayMaxMs again
  b.connected();
  clock.advance(60_000);
  assert.equal(b.next({ kind: 'network' }).delayMs, 5000);
  // failed attempts that never connected are not a drop: the plain window, however long
  const fresh = new Backoff({ ...opts, dropDelayMaxMs: 10_000, outageSpread: 3 }, clock, () => 0.5);
  clock.advance(30_000);
  assert.equal(fresh.next({ kind: 'network' }).delayMs, 500);
});
