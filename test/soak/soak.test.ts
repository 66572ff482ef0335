// The soak's short version (bench/soak.ts, one minute): the whole agent on the real stack with the
// broker and ffmpeg killed twice each. Asserts what must hold whatever the machine's speed: viewer
// sessions play, every security event raised while the broker was down reaches the cloud, no
// hostile request is admitted, the agent never restarts. Time and memory figures are printed by
// the bench, not asserted here (machines are noisy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';

test(
  'soak (1 min): sessions play and are cut, events queued while the broker is down all arrive',
  {
    ...needs('mosquitto'),
    timeout: 6 * 60_000,
  },
  async () => {
    const tmp = makeTempDir('lenscap-soak-test-');
    try {
      const out = join(tmp.dir, 'soak.json');
      const script = new URL('../../bench/soak.ts', import.meta.url).pathname;
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', script, '--minutes', '1', '--kill-every', '20', '--warmup', '10', '--json', out],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => (child.kill('SIGKILL'), resolve(null)), 5 * 60_000);
        child.once('exit', (c) => (clearTimeout(t), resolve(c)));
      });
      assert.notEqual(code, null, `bench/soak.ts did not finish within 5 min:\n${text.slice(-2000)}`);
      const f = JSON.parse(readFileSync(out, 'utf8')) as Record<string, number>;
      assert.ok(f.brokerKills! >= 2, `broker kills ${f.brokerKills}`);
      assert.ok(f.ffmpegKills! >= 1, `ffmpeg kills ${f.ffmpegKills}`);
      assert.ok(f.eventsQueuedWhileDown! > 0, 'no security event was raised while the broker was down');
      assert.equal(f.eventsLost, 0, `security events lost:\n${text.slice(-1500)}`);
      assert.ok(f.sessions! > 0, `no viewer session played:\n${text.slice(-1500)}`);
      assert.equal(f.hostileAdmitted, 0);
      assert.equal(f.agentRestarts, 0);
    } finally {
      tmp.cleanup();
    }
  },
);
