/**
 * A minimal agent media side in its own process (testpattern → ffmpeg → hub), for the orphan
 * test: prints the capture ffmpeg's pid once it runs, then waits to be killed.
 */
import { testPatternService } from './service-fixture.ts';

const s = testPatternService();
await s.start();
const poll = setInterval(() => {
  const pid = s.capturePid();
  if (pid) {
    process.stdout.write(`${JSON.stringify({ pid })}\n`);
    clearInterval(poll);
    setInterval(() => undefined, 1000);
  }
}, 50);
