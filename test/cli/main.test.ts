import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../agent/main.ts';
import { commands } from '../../agent/cli/registry.ts';
import type { CliIo } from '../../agent/cli/command.ts';
import { makeTempDir } from '../../harness/tmp.ts';

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

test('`lenscap --help` lists every verb', async () => {
  const io = capture();
  assert.equal(await main(['--help'], io), 0);
  for (const c of commands)
    assert.ok(
      io.stdout.some((l) => l.includes(c.name)),
      `help lists ${c.name}`,
    );
});

test('an unknown verb exits 2 with a coded message', async () => {
  const io = capture();
  assert.equal(await main(['frobnicate'], io), 2);
  assert.match(io.stderr[0] ?? '', /^ERR_CLI_USAGE: unknown command "frobnicate"/);
});

for (const c of commands) {
  test(`\`lenscap ${c.name} --help\` prints usage`, async () => {
    const io = capture();
    assert.equal(await main([...c.name.split(' '), '--help'], io), 0);
    assert.match(io.stdout.join('\n'), /usage: lenscap/);
  });
}

test('`config check` prints the resolved config, or every error with exit 1', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ stateDir: dir }));
  let io = capture();
  assert.equal(await main(['config', 'check', good], io), 0);
  assert.equal(JSON.parse(io.stdout.join('\n')).stateDir, dir);

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ gate: { port: -1 } }));
  io = capture();
  assert.equal(await main(['config', 'check', bad], io), 1);
  assert.match(io.stderr.join('\n'), /ERR_CONFIG_INVALID: .*\n.*gate\.port/);
});

test('an unknown option is a usage error, not a crash', async () => {
  const io = capture();
  assert.equal(await main(['config', 'check', '--bogus', 'x'], io), 2);
  assert.match(io.stderr[0] ?? '', /^ERR_CLI_USAGE: /);
});
