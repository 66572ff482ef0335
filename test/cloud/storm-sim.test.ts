/**
 * The fleet-size simulation behind `bench/storm.ts --simulate` (harness/storm-sim.ts): it runs the
 * agent's own reconnect policy on a simulated clock, so its figures must be reproducible, respect
 * the connect budget it models, and its recommendation must actually keep the fleet under budget.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../agent/config/schema.ts';
import { recommend, simulate } from '../../harness/storm-sim.ts';

const base = { ...configSchema.parse({}).cloud.backoff, followServerReference: false };

test('simulation: deterministic, every device back, accepted connects never above the budget', () => {
  const o = { devices: 5000, budget: 50, outageS: 30, backoff: base, seed: 7 };
  const a = simulate(o);
  assert.deepEqual(simulate(o), a, 'same arguments, same figures');
  assert.equal(a.back, 5000);
  assert.ok(a.t99S !== null && a.t100S !== null && a.t99S <= a.t100S);
  // the budget is what the broker accepts: the simulation can only have refused above it
  assert.ok(
    a.peakOfferedPerSec > 50 && a.throttled > 0,
    'the defaults overrun a 50/s budget at 5,000 devices',
  );
});

test('simulation: the recommended windows (≈ devices / budget) keep the offered peak under the budget', () => {
  const recs = recommend({ devices: 5000, budget: 50, outageS: 30 }, base);
  const fit = recs.find((r) => r.result.peakOverBudget <= 1);
  assert.ok(fit, JSON.stringify(recs.map((r) => [r.backoff.dropDelayMaxMs, r.result.peakOverBudget])));
  assert.equal(fit.result.throttled, 0);
  assert.equal(fit.result.back, 5000);
  assert.ok(fit.backoff.dropDelayMaxMs >= (5000 / 50) * 1000, 'at least devices / budget seconds');
  assert.ok(fit.backoff.capMs >= fit.backoff.dropDelayMaxMs, 'the drop window is capped by capMs');
});

test('the default policy: a 30 s outage of 1,000 devices returns at ≤ 5 %/s (20 seeds); without outageSpread it did not', () => {
  const peaks = (backoff: typeof base) =>
    Array.from({ length: 20 }, (_, i) =>
      simulate({ devices: 1000, budget: 1e9, outageS: 30, backoff, seed: i + 1 }),
    );
  const now = peaks(base);
  const worst = Math.max(...now.map((r) => r.peakOfferedPerSec));
  // the issue-18 goal is 8 %/s measured on real sockets; the policy alone keeps a margin under it
  assert.ok(worst <= 50, `worst simulated peak ${worst}/s`);
  assert.ok(
    now.every((r) => r.back === 1000 && r.t99S !== null && r.t99S <= 2 * (base.capMs / 1000)),
    '99 % back within 2× the cap',
  );
  const before = Math.max(...peaks({ ...base, outageSpread: 0 }).map((r) => r.peakOfferedPerSec));
  assert.ok(before > 80, `outageSpread 0 (the previous policy): worst peak ${before}/s`);
});
