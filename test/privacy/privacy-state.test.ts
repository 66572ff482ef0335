/**
 * The status light and the privacy switch against a fake sysfs tree in a temp dir, and the
 * privacy state that combines config, cloud and switch (the switch wins).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createSysfsLed } from '../../drivers/led/sysfs.ts';
import { createStatusLed } from '../../drivers/led/registry.ts';
import { createGpioSwitch } from '../../drivers/privacy/sysfs-gpio.ts';
import { createPrivacySwitch } from '../../drivers/privacy/registry.ts';
import { createPrivacyState } from '../../agent/privacy/state.ts';
import { Activity } from '../../agent/stream/activity.ts';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { ManualClock } from '../../agent/clock.ts';
import { silentLogger } from '../../agent/log.ts';
import { TestClock } from '../../harness/test-clock.ts';
import { makeTempDir } from '../../harness/tmp.ts';

test('sysfs LED: max_brightness when on, 0 when off, through Activity counting', () => {
  const tmp = makeTempDir();
  try {
    const dir = join(tmp.dir, 'class/leds/lenscap:green:status');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'brightness'), '0');
    writeFileSync(join(dir, 'max_brightness'), '255');
    const led = createSysfsLed({ name: 'lenscap:green:status', sysfsRoot: tmp.dir });
    const a = new Activity(led);
    const read = () => readFileSync(join(dir, 'brightness'), 'utf8');
    assert.equal(read(), '0');
    const end1 = a.begin();
    const end2 = a.begin();
    assert.equal(read(), '255');
    end1();
    end1();
    assert.equal(read(), '255', 'still one active');
    end2();
    assert.equal(read(), '0');
    assert.throws(() => createSysfsLed({ name: '../../etc', sysfsRoot: tmp.dir }));
    const errors: Error[] = [];
    const broken = createSysfsLed({ name: 'missing', sysfsRoot: tmp.dir, onError: (e) => errors.push(e) });
    broken.set(true);
    assert.equal(errors.length, 1, 'a broken light reports, never throws');
    assert.equal(createStatusLed({ driver: 'none', sysfsRoot: '/sys' }).name, 'none');
  } finally {
    tmp.cleanup();
  }
});

test('GPIO switch: active high/low, unreadable reads as privacy ON, watch reports changes', async () => {
  const tmp = makeTempDir();
  try {
    const value = join(tmp.dir, 'class/gpio/gpio17/value');
    mkdirSync(join(tmp.dir, 'class/gpio/gpio17'), { recursive: true });
    writeFileSync(value, '0\n');
    const clock = new TestClock();
    const sw = createGpioSwitch({ path: value, pollMs: 20, timers: clock });
    assert.equal(sw.read(), false);
    writeFileSync(value, '1\n');
    assert.equal(sw.read(), true);
    assert.equal(createGpioSwitch({ path: value, activeLow: true }).read(), false);
    const seen: boolean[] = [];
    const stop = sw.watch((on) => seen.push(on));
    writeFileSync(value, '0\n');
    await clock.advance(20);
    assert.deepEqual(seen, [false], 'one poll sees the change');
    rmSync(value);
    await clock.advance(100);
    stop();
    assert.equal(clock.timers, 0, 'stop clears the poll');
    assert.deepEqual(seen, [false, true], 'off, then unreadable = on (fail closed)');
    writeFileSync(value, 'garbage');
    assert.equal(sw.read(), true);
    assert.equal(createPrivacySwitch({ driver: 'none', activeLow: false, pollMs: 100 }).read(), false);
  } finally {
    tmp.cleanup();
  }
});

test('privacy state: config, cloud and switch; the switch wins; change events and security events', async () => {
  const tmp = makeTempDir();
  try {
    const value = join(tmp.dir, 'value');
    writeFileSync(value, '0');
    const clock = new TestClock();
    const events = new MemoryEventSink();
    const p = createPrivacyState({
      initial: false,
      hardware: createGpioSwitch({ path: value, pollMs: 20, timers: clock }),
      serial: 'CAM-0001',
      clock: new ManualClock(0),
      logger: silentLogger(),
      events,
    });
    const changes: boolean[] = [];
    p.on('change', (on: boolean) => changes.push(on));
    p.start();
    assert.equal(p.isOn(), false);
    assert.deepEqual(p.set(true), { enabled: true, heldBySwitch: false });
    assert.deepEqual(p.set(false), { enabled: false, heldBySwitch: false });
    writeFileSync(value, '1');
    await clock.advance(20);
    assert.equal(p.isOn(), true, 'the next poll turns privacy on');
    assert.deepEqual(
      p.set(false),
      { enabled: true, heldBySwitch: true },
      'the cloud cannot turn privacy off while the switch is on',
    );
    writeFileSync(value, '0');
    await clock.advance(20);
    assert.equal(p.isOn(), false);
    p.stop();
    assert.equal(clock.timers, 0, 'stop ends the watch');
    assert.deepEqual(changes, [true, false, true, false]);
    assert.equal(events.events.filter((e) => e.type === 'privacy_changed').length, 4);
    const fromConfig = createPrivacyState({
      initial: true,
      hardware: createPrivacySwitch({ driver: 'none', activeLow: false, pollMs: 100 }),
      serial: 'CAM-0001',
      clock: new ManualClock(0),
      logger: silentLogger(),
    });
    assert.equal(fromConfig.isOn(), true);
  } finally {
    tmp.cleanup();
  }
});
