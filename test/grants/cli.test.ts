import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../agent/main.ts';
import { main as devMain } from '../../scripts/dev-cloud/cli.ts';
import type { CliIo } from '../../agent/cli/command.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { makeTempDir } from '../../harness/tmp.ts';

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

test('lenscap-dev grant prints the token alone; grant inspect shows every check; bind claims', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const devDir = join(dir, 'dev');
  const keys = await loadOrCreateSigningKeys(devDir);
  const paths = stateLayout(join(dir, 'state'));
  mkdirSync(paths.trustDir, { recursive: true });
  writeFileSync(paths.trustRoot, JSON.stringify(keys.trustRootJwk));
  writeFileSync(paths.trustBundle, keys.trustBundle);

  let io = capture();
  assert.equal(
    await devMain(
      ['grant', '--serial', 'CAM-7', '--viewer', 'alice', '--ttl', '60', '--dev-dir', devDir],
      io,
    ),
    0,
  );
  assert.equal(io.stdout.length, 1);
  const token = io.stdout[0]!;
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

  // Not claimed yet: every check up to binding passes, binding fails.
  io = capture();
  assert.equal(
    await main(['grant', 'inspect', token, '--state-dir', paths.root, '--serial', 'CAM-7'], io),
    3,
  );
  const out = io.stdout.join('\n');
  assert.match(out, /pass {2}signature/);
  assert.match(out, /pass {2}audience/);
  assert.match(out, /FAIL {2}binding/);
  assert.match(out, /REFUSE not_claimed/);
  assert.ok(!out.includes(token), 'the token itself is never printed');

  io = capture();
  assert.equal(
    await devMain(
      ['bind', '--serial', 'CAM-7', '--owner', 'alice', '--out', paths.binding, '--dev-dir', devDir],
      io,
    ),
    0,
  );
  io = capture();
  assert.equal(
    await main(['grant', 'inspect', token, '--state-dir', paths.root, '--serial', 'CAM-7'], io),
    0,
  );
  assert.match(io.stdout.join('\n'), /result {3}ACCEPT/);

  // Misrouted: the same grant inspected as camera CAM-8.
  io = capture();
  assert.equal(
    await main(['grant', 'inspect', token, '--state-dir', paths.root, '--serial', 'CAM-8'], io),
    3,
  );
  assert.match(io.stdout.join('\n'), /FAIL {2}audience[\s\S]*REFUSE wrong_audience/);
});

test('bad CLI input gets a coded usage error, never a crash', async () => {
  const io = capture();
  assert.equal(await devMain(['grant', '--serial', 'X', '--viewer', 'v', '--ttl', 'soon'], io), 2);
  assert.match(io.stderr[0] ?? '', /^ERR_CLI_USAGE: --ttl/);
});
