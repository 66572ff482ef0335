/**
 * CLI error lines reach the terminal as whole lines: the real `lenscap` process prints each coded
 * error ending in exactly one newline, so it is never glued to whatever the shell prints next.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asLine } from '../../agent/cli/command.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const BIN = fileURLToPath(new URL('../../bin/lenscap.js', import.meta.url));

function lenscap(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, `lenscap ${args[0]} ran`);
  return r;
}

test('`lenscap grant inspect TOKEN` without a serial: ERR_NO_SERIAL on one whole line, exit 1', (t) => {
  const tmp = makeTempDir();
  t.after(tmp.cleanup);
  const r = lenscap(['grant', 'inspect', 'TOKEN', '--state-dir', join(tmp.dir, 'none')]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^ERR_NO_SERIAL: [^\n]+\n$/);
});

test('usage errors and unknown verbs end every stderr line with a newline', () => {
  for (const args of [['config', 'check', '--bogus'], ['frobnicate']]) {
    const r = lenscap(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, /^ERR_CLI_USAGE: /);
    assert.ok(r.stderr.endsWith('\n'), `${args.join(' ')}: ${JSON.stringify(r.stderr.slice(-40))}`);
    assert.ok(!r.stderr.includes('\n\n\n'), 'no doubled line ends');
  }
});

test('a message that already ends in a newline is not given a second one', () => {
  assert.equal(asLine('ERR_X: a'), 'ERR_X: a\n');
  assert.equal(asLine('ERR_X: a\n'), 'ERR_X: a\n');
});

test('a reader that goes away (`lenscap --help | head -0`) ends lenscap quietly (141, as SIGPIPE would): no crash, no stack', async () => {
  const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The read end closes before node has even started: the first write meets EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(
      () => (child.kill('SIGKILL'), reject(new Error('lenscap did not exit'))),
      60_000,
    );
    child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
  });
  assert.doesNotMatch(stderr, /EPIPE|Unhandled|at .*\(/, stderr);
  assert.equal(code, 141);
});
