/**
 * A minimal agent media side in its own process (testpattern → ffmpeg → hub), for the orphan
 * test: prints the capture ffmpeg's pid once it runs, then waits to be killed.
 */
import { EventEmitter } from 'node:events';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { createStreamService } from '../../agent/stream/service.ts';
import { createTestPatternDriver } from '../../drivers/camera/testpattern.ts';

const { config } = loadConfig(undefined, {});
const privacy = Object.assign(new EventEmitter(), { isOn: () => false });
const s = createStreamService({
  serial: 'CAM-0001',
  stream: { ...config.stream, mode: 'always' },
  camera: { ...config.camera, width: 320, height: 180 },
  logger: silentLogger(),
  privacy,
  cameraDriver: createTestPatternDriver({ hasDrawtext: false }),
});
await s.start();
const poll = setInterval(() => {
  const pid = s.capturePid();
  if (pid) {
    process.stdout.write(`${JSON.stringify({ pid })}\n`);
    clearInterval(poll);
    setInterval(() => undefined, 1000);
  }
}, 50);
