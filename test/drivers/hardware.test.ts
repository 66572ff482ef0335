/**
 * Status light and privacy switch against a fake sysfs tree in a temp dir: the LED writes only its
 * brightness file, on change; the GPIO switch reads active-high/low, fails closed (unreadable or
 * odd value = privacy on) and reports changes by polling.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createStatusLed } from '../../drivers/led/registry.ts';
import { createSysfsLed } from '../../drivers/led/sysfs.ts';
import { createPrivacySwitch } from '../../drivers/privacy/registry.ts';
import { createGpioSwitch } from '../../drivers/privacy/sysfs-gpio.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { makeTempDir } from '../../harness/tmp.ts';

function fakeLed(root: string, name: string, max?: string): string {
  const dir = join(root, 'class', 'leds', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'brightness'), '0\n');
  if (max !== undefined) writeFileSync(join(dir, 'max_brightness'), `${max}\n`);
  return join(dir, 'brightness');
}

test('sysfs LED: max_brightness when on, 0 when off, only on change', () => {
  const { dir, cleanup } = makeTempDir('lenscap-led-');
  try {
    const file = fakeLed(dir, 'lenscap:status', '255');
    const led = createSysfsLed({ name: 'lenscap:status', sysfsRoot: dir });
    led.set(true);
    assert.equal(readFileSync(file, 'utf8'), '255');
    writeFileSync(file, 'tampered');
    led.set(true); // no change: no write
    assert.equal(readFileSync(file, 'utf8'), 'tampered');
    led.set(false);
    assert.equal(readFileSync(file, 'utf8'), '0');
    // Without max_brightness, 1 is on.
    const f2 = fakeLed(dir, 'act');
    const led2 = createStatusLed({ driver: 'sysfs', name: 'act', sysfsRoot: dir });
    led2.set(true);
    assert.equal(readFileSync(f2, 'utf8'), '1');
  } finally {
    cleanup();
  }
});

test('sysfs LED: a failing write is reported, never thrown; names cannot escape the LED dir', () => {
  const { dir, cleanup } = makeTempDir('lenscap-led-');
  try {
    const errors: Error[] = [];
    const led = createSysfsLed({ name: 'missing', sysfsRoot: dir, onError: (e) => errors.push(e) });
    led.set(true);
    assert.equal(errors.length, 1);
    for (const bad of ['../x', '..', 'a/b', '.hidden', ''])
      assert.throws(() => createSysfsLed({ name: bad, sysfsRoot: dir }));
    assert.throws(() => createStatusLed({ driver: 'sysfs', sysfsRoot: dir }));
    const none = createStatusLed({ driver: 'none', sysfsRoot: dir });
    none.set(true);
    assert.equal(none.name, 'none');
  } finally {
    cleanup();
  }
});

test('GPIO switch: active-high and active-low readings', () => {
  const { dir, cleanup } = makeTempDir('lenscap-gpio-');
  try {
    const value = join(dir, 'class', 'gpio', 'gpio17', 'value');
    mkdirSync(join(value, '..'), { recursive: true });
    writeFileSync(value, '0\n');
    const high = createGpioSwitch({ path: value });
    const low = createGpioSwitch({ path: value, activeLow: true });
    assert.equal(high.read(), false);
    assert.equal(low.read(), true);
    writeFileSync(value, '1\n');
    assert.equal(high.read(), true);
    assert.equal(low.read(), false);
  } finally {
    cleanup();
  }
});

test('GPIO switch fails closed: missing file or odd value reads as privacy ON, reported once', () => {
  const { dir, cleanup } = makeTempDir('lenscap-gpio-');
  try {
    const value = join(dir, 'value');
    const errors: Error[] = [];
    const sw = createGpioSwitch({ path: value, onError: (e) => errors.push(e) });
    assert.equal(sw.read(), true);
    assert.equal(sw.read(), true);
    assert.equal(errors.length, 1);
    writeFileSync(value, 'banana');
    assert.equal(createGpioSwitch({ path: value, activeLow: true }).read(), true);
    writeFileSync(value, '0');
    assert.equal(sw.read(), false);
    rmSync(value);
    assert.equal(sw.read(), true);
  } finally {
    cleanup();
  }
});

test('GPIO switch: watch reports each change by polling, and stops when asked', async () => {
  const { dir, cleanup } = makeTempDir('lenscap-gpio-');
  try {
    const value = join(dir, 'value');
    writeFileSync(value, '0');
    const clock = new TestClock();
    const sw = createPrivacySwitch(
      { driver: 'sysfs-gpio', path: value, activeLow: false, pollMs: 10 },
      undefined,
      clock,
    );
    const seen: boolean[] = [];
    const stop = sw.watch((on) => seen.push(on));
    writeFileSync(value, '1');
    await clock.advance(9);
    assert.deepEqual(seen, [], 'no poll before pollMs');
    await clock.advance(1);
    assert.deepEqual(seen, [true], 'the first poll reports the change');
    await clock.advance(50);
    assert.deepEqual(seen, [true], 'an unchanged value is not reported again');
    writeFileSync(value, '0');
    await clock.advance(10);
    assert.deepEqual(seen, [true, false]);
    stop();
    assert.equal(clock.timers, 0, 'stop clears the poll');
    writeFileSync(value, '1');
    await clock.advance(100);
    assert.deepEqual(seen, [true, false], 'nothing after stop');
    assert.throws(() => createPrivacySwitch({ driver: 'sysfs-gpio', activeLow: false, pollMs: 10 }));
    const none = createPrivacySwitch({ driver: 'none', activeLow: false, pollMs: 10 });
    assert.equal(none.read(), false);
  } finally {
    cleanup();
  }
});
