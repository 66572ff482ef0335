/**
 * The capture service the stream lifecycle tests and their child process run: the test-pattern
 * camera (no drawtext), no privacy switch, silent logs; capture `always` at 320x180 unless told.
 */
import { EventEmitter } from 'node:events';
import type { Time } from '../../agent/clock.ts';
import { loadConfig } from '../../agent/config/load.ts';
import type { Config } from '../../agent/config/schema.ts';
import { silentLogger } from '../../agent/log.ts';
import { createStreamService, type StreamService } from '../../agent/stream/service.ts';
import { createTestPatternDriver } from '../../drivers/camera/testpattern.ts';

export function testPatternService(
  opts: { stream?: Partial<Config['stream']>; width?: number; height?: number; clock?: Time } = {},
): StreamService {
  const { config } = loadConfig(undefined, {});
  const privacy = Object.assign(new EventEmitter(), { isOn: () => false });
  return createStreamService({
    serial: 'CAM-0001',
    stream: { ...config.stream, mode: 'always', ...opts.stream },
    camera: { ...config.camera, width: opts.width ?? 320, height: opts.height ?? 180 },
    logger: silentLogger(),
    privacy,
    ...(opts.clock ? { clock: opts.clock } : {}),
    cameraDriver: createTestPatternDriver({ hasDrawtext: false }),
  });
}
