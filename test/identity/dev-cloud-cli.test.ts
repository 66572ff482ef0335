/**
 * The verbs as a person runs them: `lenscap-dev --provisioning-only` in its own process,
 * `lenscap-dev token`, then `lenscap provision` in another process against it (the flow
 * `npm start` and a factory bench use). The token works once; SIGTERM stops the service cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../scripts/dev-cloud/cli.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { within } from '../../harness/wait.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function lenscap(args: string[], bin = 'lenscap.js') {
  const child = spawn(process.execPath, [join(REPO, 'bin', bin), ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // Bounded from the moment a test awaits it (a long-running dev cloud is awaited only after its kill).
  const what = `lenscap ${args.slice(0, 2).join(' ')} to exit`; // the verb only: args may hold a token
  return {
    child,
    get exited() {
      return within(exit, 60_000, what);
    },
    out: () => out,
    err: () => err,
  };
}

async function waitFor(get: () => string, re: RegExp, ms: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = re.exec(get());
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; got:\n${get()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('lenscap-dev token: usage errors are coded; prints one token', async () => {
  const tmp = makeTempDir();
  try {
    const lines: string[] = [];
    const errs: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (l: string) => void errs.push(l) };
    assert.equal(await main(['token', '--dev-dir', tmp.dir], io), 2);
    assert.match(errs.join('\n'), /ERR_CLI_USAGE/);
    assert.equal(await main(['token', '--serial', 'CAM-0001', '--ttl', '-5', '--dev-dir', tmp.dir], io), 2);
    assert.equal(await main(['token', '--serial', 'bad/serial', '--dev-dir', tmp.dir], io), 1);
    assert.match(errs.at(-1)!, /ERR_SERIAL_INVALID/);
    assert.equal(await main(['token', '--serial', 'CAM-0001', '--ttl', '60', '--dev-dir', tmp.dir], io), 0);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^lct_[A-Za-z0-9_-]{43}$/);
  } finally {
    tmp.cleanup();
  }
});

test(
  'lenscap-dev --provisioning-only + lenscap-dev token + provision, each its own process',
  { timeout: 240_000 },
  async () => {
    const tmp = makeTempDir();
    const devDir = join(tmp.dir, 'dev');
    const stateDir = join(tmp.dir, 'cam');
    const svc = lenscap(['--provisioning-only', '--dev-dir', devDir], 'lenscap-dev.js');
    try {
      await waitFor(svc.out, /ready/, 45_000);
      const url = (await waitFor(svc.out, /provisioning service:\s+(\S+)/, 1000))[1]!;
      const caFile = (await waitFor(svc.out, /provisioning CA:\s+(\S+)/, 1000))[1]!;

      const tok = lenscap(['token', '--serial', 'CAM-0100', '--dev-dir', devDir], 'lenscap-dev.js');
      assert.equal(await tok.exited, 0, tok.err());
      const token = tok.out().trim();

      const prov = lenscap([
        'provision',
        '--serial',
        'CAM-0100',
        '--url',
        url,
        '--token',
        token,
        '--ca',
        caFile,
        '--state-dir',
        stateDir,
      ]);
      assert.equal(await prov.exited, 0, prov.out() + prov.err());
      assert.ok(!prov.out().includes(token) && !prov.err().includes(token), 'the token is never printed');
      assert.ok(!/PRIVATE KEY/.test(prov.out() + prov.err()), 'the key is never printed');
      const paths = stateLayout(stateDir);
      assert.ok(existsSync(paths.deviceCert) && existsSync(paths.trustBundle));
      assert.equal(statSync(paths.deviceKey).mode & 0o777, 0o600);

      // The same token on another camera (another key): refused with its code.
      const again = lenscap([
        'provision',
        '--serial',
        'CAM-0100',
        '--url',
        url,
        '--token',
        token,
        '--ca',
        caFile,
        '--state-dir',
        join(tmp.dir, 'cam2'),
      ]);
      assert.equal(await again.exited, 1);
      assert.match(again.out() + again.err(), /ERR_PROVISION_TOKEN_USED/);

      svc.child.kill('SIGTERM');
      assert.equal(await svc.exited, 0, svc.err());
      assert.match(svc.out(), /stopped \(SIGTERM\)/);
    } finally {
      if (svc.child.exitCode === null) svc.child.kill('SIGKILL');
      tmp.cleanup();
    }
  },
);
