/**
 * A camera's media side for tests: a real grant gate (real signed grants), the real stream
 * service (testpattern through real ffmpeg into the real in-process hub), the privacy state, a
 * sysfs LED in a fake tree, and the viewer gate on 127.0.0.1:0 over plain HTTP.
 * One per test process (node-media-server is a singleton).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../agent/config/load.ts';
import { silentLogger, createLogger, type Logger } from '../agent/log.ts';
import type { EventSink } from '../agent/audit/events.ts';
import { createStreamService, type StreamService } from '../agent/stream/service.ts';
import { createPrivacyState, type PrivacyState } from '../agent/privacy/state.ts';
import { Activity } from '../agent/stream/activity.ts';
import { createGate, type Gate } from '../agent/gate/gate.ts';
import { createTestPatternDriver } from '../drivers/camera/testpattern.ts';
import { createSysfsLed } from '../drivers/led/sysfs.ts';
import { createNoSwitch } from '../drivers/privacy/none.ts';
import { makeGrantFixture, type GrantFixture } from './grants-fixture.ts';

export interface MediaFixture {
  f: GrantFixture;
  stream: StreamService;
  privacy: PrivacyState;
  activity: Activity;
  gate: Gate;
  ledValue(): string;
  /** URL of the gate's stream path for a serial. */
  url(serial?: string): string;
  makeGate(over: Partial<ReturnType<typeof loadConfig>['config']['gate']>): Promise<Gate>;
  close(): Promise<void>;
}

export async function makeMediaFixture(
  opts: {
    mode?: 'on-demand' | 'always';
    idleStopSeconds?: number;
    gate?: Record<string, unknown>;
    grants?: Parameters<typeof makeGrantFixture>[0];
    /** One logger for the whole media side and the grant gate (default: silent). */
    logger?: Logger;
    /** Also receives every security event (a real on-disk EventQueue). */
    alsoEmit?: EventSink;
  } = {},
): Promise<MediaFixture> {
  const f = await makeGrantFixture({
    ...(opts.grants ?? {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.alsoEmit ? { alsoEmit: opts.alsoEmit } : {}),
  });
  // Real time: sessions are cut against the wall clock in these tests.
  f.clock.now = () => Date.now();
  const { config } = loadConfig(undefined, {});
  const logger =
    opts.logger ?? (process.env.LENSCAP_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger());
  const sysfs = join(f.dir, 'sys');
  mkdirSync(join(sysfs, 'class/leds/status'), { recursive: true });
  writeFileSync(join(sysfs, 'class/leds/status/brightness'), '0');
  writeFileSync(join(sysfs, 'class/leds/status/max_brightness'), '255');
  const privacy = createPrivacyState({
    initial: false,
    hardware: createNoSwitch(),
    serial: f.paths ? 'CAM-0001' : '',
    clock: f.clock,
    logger,
    events: f.events,
  });
  f.privacy.on = false;
  // The grant fixture reads privacy from f.privacy: keep it in step with the shared state.
  privacy.on('change', (on: boolean) => (f.privacy.on = on));
  const activity = new Activity(createSysfsLed({ name: 'status', sysfsRoot: sysfs }));
  const stream = createStreamService({
    serial: 'CAM-0001',
    stream: { ...config.stream, mode: opts.mode ?? 'always', idleStopSeconds: opts.idleStopSeconds ?? 2 },
    camera: { ...config.camera, width: 320, height: 180, fps: 15, gopSeconds: 1, bitrateKbps: 400 },
    logger,
    privacy,
    cameraDriver: createTestPatternDriver({ hasDrawtext: false }),
    backoff: { initialMs: 200, maxMs: 2000 },
  });
  await stream.start();
  const gates: Gate[] = [];
  const makeGate = async (over: Record<string, unknown>) => {
    const g = createGate({
      serial: 'CAM-0001',
      config: {
        ...config.gate,
        host: '127.0.0.1',
        port: 0,
        tls: false,
        ...opts.gate,
        ...over,
      } as typeof config.gate,
      grants: f.gate,
      stream,
      privacy,
      clock: f.clock,
      logger,
      activity,
    });
    await g.listen();
    gates.push(g);
    return g;
  };
  const gate = await makeGate({});
  return {
    f,
    stream,
    privacy,
    activity,
    gate,
    ledValue: () => readFileSync(join(sysfs, 'class/leds/status/brightness'), 'utf8'),
    url: (serial = 'CAM-0001') => `${gate.url}/live/${serial}.flv`,
    makeGate,
    async close() {
      for (const g of gates) await g.close();
      await stream.stop();
      f.cleanup();
    },
  };
}
