/**
 * A technician's first board against the dev cloud, following only what `lenscap-dev` prints: it
 * prints a complete agent.json (broker URL, MQTT version, state dir, camera driver); the camera is
 * provisioned with a token, started with that agent.json (an agent process), comes online at once
 * (no MQTT 5 → 3.1.1 fall-back needed) and is bound from the CLI with `lenscap-dev bind --send`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEV_PORTS } from '../../scripts/dev-cloud/board-config.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function start(bin: string, args: string[]) {
  const child = spawn(process.execPath, [join(REPO, 'bin', bin), ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const io = { out: '', err: '' };
  child.stdout!.on('data', (d: Buffer) => (io.out += d));
  child.stderr!.on('data', (d: Buffer) => (io.err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { child, io, exited };
}

async function waitFor(get: () => string, re: RegExp, ms: number, what: string): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = re.exec(get());
    if (m) return m;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}; got:\n${get()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stop(c: ChildProcess) {
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

test(
  'the printed agent.json starts a board against the dev cloud; bind --send claims it',
  { timeout: 300_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-dev-board-');
    t.after(tmp.cleanup);
    const devDir = join(tmp.dir, 'dev');
    const stateDir = join(tmp.dir, 'board');
    // Free ports here (a shared test machine); without the flags the defaults are fixed:
    assert.deepEqual(DEV_PORTS, { provisioning: 18443, broker: 18883, page: 18080 });
    const cloud = start('lenscap-dev.js', [
      '--dev-dir',
      devDir,
      '--provisioning-port',
      '0',
      '--broker-port',
      '0',
      '--page-port',
      '0',
      '--board-state-dir',
      stateDir,
      '--camera-driver',
      'testpattern',
    ]);
    t.after(() => stop(cloud.child));
    await waitFor(() => cloud.io.out, /ready \(Ctrl-C stops\)/, 150_000, 'the dev cloud to be ready');
    const out = cloud.io.out;
    const url = /provisioning service:\s+(\S+)/.exec(out)![1]!;
    const caFile = /provisioning CA:\s+(\S+)/.exec(out)![1]!;
    const brokerUrl = /broker:\s+(\S+)/.exec(out)![1]!;
    const block = /agent\.json for a board[^\n]*\n([\s\S]*?\n\})\n/.exec(out);
    assert.ok(block, `an agent.json block in:\n${out}`);
    const agentJson = JSON.parse(block[1]!);
    assert.equal(agentJson.cloud.url, brokerUrl);
    assert.equal(agentJson.cloud.protocolVersion, 4, 'aedes speaks 3.1.1');
    assert.equal(agentJson.stateDir, stateDir);
    assert.equal(agentJson.camera.driver, 'testpattern');
    assert.match(out, /npx lenscap-dev bind --serial \S+ --owner \S+ --send/);

    const tok = spawnSync(
      process.execPath,
      [join(REPO, 'bin/lenscap-dev.js'), 'token', '--serial', 'CAM-B1', '--dev-dir', devDir],
      {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(tok.status, 0, tok.stderr);
    const prov = spawnSync(
      process.execPath,
      [
        join(REPO, 'bin/lenscap.js'),
        'provision',
        '--serial',
        'CAM-B1',
        '--url',
        url,
        '--token',
        tok.stdout.trim(),
        '--ca',
        caFile,
        '--state-dir',
        stateDir,
      ],
      { cwd: REPO, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(prov.status, 0, prov.stdout + prov.stderr);

    // The printed config as is, but for the gate port: a board has 8443 to itself, this machine may not.
    const config = join(tmp.dir, 'agent.json');
    writeFileSync(
      config,
      JSON.stringify({ ...agentJson, gate: { ...agentJson.gate, host: '127.0.0.1', port: 0 } }),
    );
    const agent = start('lenscap.js', ['run', '--config', config]);
    t.after(() => stop(agent.child));
    await waitFor(
      () => agent.io.out + agent.io.err,
      /cloud link: online/,
      90_000,
      'the board to come online',
    );
    assert.doesNotMatch(agent.io.out, /falling back to MQTT 3\.1\.1/);

    const bind = spawnSync(
      process.execPath,
      [
        join(REPO, 'bin/lenscap-dev.js'),
        'bind',
        '--serial',
        'CAM-B1',
        '--owner',
        'alice',
        '--send',
        '--broker-url',
        brokerUrl,
        '--dev-dir',
        devDir,
      ],
      { cwd: REPO, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(bind.status, 0, bind.stdout + bind.stderr);
    assert.equal(bind.stdout, 'bound CAM-B1 to alice\n');
    await waitFor(() => agent.io.out, /binding/i, 10_000, 'the board to log the binding');

    // A camera that is not online: a coded refusal, exit 1.
    const offline = spawnSync(
      process.execPath,
      [
        join(REPO, 'bin/lenscap-dev.js'),
        'bind',
        '--serial',
        'CAM-NONE',
        '--owner',
        'alice',
        '--send',
        '--broker-url',
        brokerUrl,
        '--dev-dir',
        devDir,
        '--timeout',
        '2',
      ],
      { cwd: REPO, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(offline.status, 1);
    assert.match(offline.stderr, /^ERR_CAMERA_OFFLINE: CAM-NONE is not online/);

    agent.child.kill('SIGTERM');
    cloud.child.kill('SIGTERM');
    assert.equal(await cloud.exited, 0, cloud.io.err);
  },
);
