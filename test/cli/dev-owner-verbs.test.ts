/**
 * `lenscap-dev claim` and `lenscap-dev member add|remove` through the bin, against the real local
 * stack (`npm start` in a temp dir): each acts as a user's simulated phone (keys under
 * <dev>/phones, 0700/0600) and talks to the running dev cloud, which only relays. alice's phone
 * (npm start's claim) adds bob; bob's `lenscap-dev view` request plays; a non-owner's membership is
 * refused (exit 3, ERR_MEMBERSHIP_NOT_OWNER); removing bob makes his next request
 * `viewer_not_bound`; after a reset carol claims camera 2 (a wrong code first: exit 3
 * ERR_CLAIM_WRONG_PROOF) and watches it; carol transfers it to dave (`member transfer --keep`):
 * her owner signatures are then refused (exit 3, ERR_MEMBERSHIP_NOT_OWNER, state file unchanged),
 * dave adds erin, and erin and carol (a viewer now) watch. Usage errors exit 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../../harness/tmp.ts';
import { startStackProcess } from '../stack/stack-process.ts';
import { clearOwnerState } from '../../agent/owner/owner-store.ts';
import { requestReset } from '../../agent/owner/reset.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { waitUntil } from '../../harness/wait.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function dev(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [join(REPO, 'bin', 'lenscap-dev.js'), ...args], { cwd: REPO });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('close', (status) => {
      clearTimeout(t);
      res({ status, stdout, stderr });
    });
  });
}

/** Runs `lenscap-dev view` and presents its two headers to the gate: status and FLV bytes seen. */
async function watch(devDir: string, serial: string, viewer: string, gate: string) {
  const v = await dev(['view', '--serial', serial, '--viewer', viewer, '--gate', gate, '--dev-dir', devDir]);
  assert.equal(v.status, 0, v.stderr);
  const header = (name: string) =>
    v.stdout
      .split('\n')
      .find((l) => l.startsWith(`${name}: `))!
      .slice(name.length + 2);
  const res = await fetch(`${gate}/live/${serial}.flv`, {
    headers: { authorization: header('Authorization'), dpop: header('DPoP') },
  });
  if (res.status !== 200) return { status: res.status, body: await res.text(), flv: 0 };
  const reader = res.body!.getReader();
  let flv = 0;
  const until = Date.now() + 10_000;
  while (flv < 1000 && Date.now() < until) {
    const { value, done } = await reader.read();
    if (done) break;
    flv += value.length;
  }
  await reader.cancel();
  return { status: 200, body: '', flv };
}

test(
  'lenscap-dev claim and member add/remove act as the phone through the running stack',
  { timeout: 240_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-devverbs-');
    const stack = startStackProcess(tmp.dir);
    try {
      const info = (await stack.ready) as unknown as {
        cameras: Array<{ serial: string; gateUrl: string; stateDir: string; claimCode: string }>;
      };
      const devDir = join(tmp.dir, 'dev');
      const cam1 = info.cameras.find((c) => c.serial === 'CAM-DEMO-1')!;
      const cam2 = info.cameras.find((c) => c.serial === 'CAM-DEMO-2')!;

      // Usage errors: 2, with the coded line.
      const usage = await dev(['member', 'add', '--serial', 'CAM-DEMO-1', '--dev-dir', devDir]);
      assert.equal(usage.status, 2);
      assert.match(usage.stderr, /ERR_CLI_USAGE: --serial, --owner and --user are required/);
      assert.equal(
        (await dev(['claim', '--serial', 'CAM-DEMO-1', '--user', 'x', '--code', 'nope', '--dev-dir', devDir]))
          .status,
        2,
      );

      // bob is not a member yet: his request is refused.
      assert.equal((await watch(devDir, 'CAM-DEMO-1', 'bob', cam1.gateUrl)).status, 403);
      const add = await dev([
        'member',
        'add',
        '--serial',
        'CAM-DEMO-1',
        '--owner',
        'alice',
        '--user',
        'bob',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(add.status, 0, add.stderr);
      assert.match(add.stdout, /^added bob to CAM-DEMO-1 \(membership v2, signed by alice\)/);
      // bob's simulated phone keeps its keys like ssh does.
      assert.equal(statSync(join(devDir, 'phones', 'bob')).mode & 0o777, 0o700);
      assert.equal(statSync(join(devDir, 'phones', 'bob', 'signing.key.pem')).mode & 0o777, 0o600);
      assert.equal(statSync(join(devDir, 'phones', 'bob', 'hpke.key.pem')).mode & 0o777, 0o600);
      const bob = await watch(devDir, 'CAM-DEMO-1', 'bob', cam1.gateUrl);
      assert.equal(bob.status, 200, bob.body);
      assert.ok(bob.flv >= 1000, `bob received FLV: ${bob.flv} bytes`);

      // A membership signed by anyone but the owner is refused by the camera: exit 3.
      const notOwner = await dev([
        'member',
        'add',
        '--serial',
        'CAM-DEMO-1',
        '--owner',
        'bob',
        '--user',
        'carol',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(notOwner.status, 3, notOwner.stderr);
      assert.match(notOwner.stderr, /^ERR_MEMBERSHIP_NOT_OWNER: CAM-DEMO-1 refused the membership/);

      const rm = await dev([
        'member',
        'remove',
        '--serial',
        'CAM-DEMO-1',
        '--owner',
        'alice',
        '--user',
        'bob',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(rm.status, 0, rm.stderr);
      const gone = await watch(devDir, 'CAM-DEMO-1', 'bob', cam1.gateUrl);
      assert.deepEqual(
        { status: gone.status, body: gone.body, flv: gone.flv },
        {
          status: 403,
          body: JSON.stringify({ error: 'viewer_not_bound' }),
          flv: 0,
        },
      );

      // An owned camera cannot be claimed again: exit 3.
      const again = await dev(['claim', '--serial', 'CAM-DEMO-1', '--user', 'carol', '--dev-dir', devDir]);
      assert.equal(again.status, 3, again.stderr);
      assert.match(again.stderr, /^ERR_CLAIM_ALREADY_CLAIMED/);

      // Local reset of camera 2, then carol claims it: a wrong code is refused, the label's works.
      const paths = stateLayout(cam2.stateDir);
      clearOwnerState(paths);
      rmSync(paths.binding, { force: true });
      requestReset(paths, 'test');
      // The running camera carries the reset out, then removes the request.
      await waitUntil(() => !existsSync(paths.resetRequest), 10_000, 'camera 2 to take the reset');
      const wrong = await dev([
        'claim',
        '--serial',
        'CAM-DEMO-2',
        '--user',
        'carol',
        '--code',
        'A'.repeat(32),
        '--dev-dir',
        devDir,
      ]);
      assert.equal(wrong.status, 3, wrong.stderr);
      assert.match(wrong.stderr, /^ERR_CLAIM_WRONG_PROOF/);
      const ok = await dev(['claim', '--serial', 'CAM-DEMO-2', '--user', 'carol', '--dev-dir', devDir]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /^claimed CAM-DEMO-2 for carol \(membership v1, owner key [\w-]{43}\)/);
      const carol = await watch(devDir, 'CAM-DEMO-2', 'carol', cam2.gateUrl);
      assert.equal(carol.status, 200, carol.body);

      // carol transfers camera 2 to dave, staying a viewer; then dave's key decides.
      const tr = await dev([
        'member',
        'transfer',
        '--serial',
        'CAM-DEMO-2',
        '--owner',
        'carol',
        '--to',
        'dave',
        '--keep',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(tr.status, 0, tr.stderr);
      assert.match(
        tr.stdout,
        /^transferred CAM-DEMO-2 from carol to dave \(membership v2, signed by carol; carol stays a viewer\)/,
      );
      const stateAfterTransfer = readFileSync(stateLayout(cam2.stateDir).ownerState);
      const byCarol = await dev([
        'member',
        'add',
        '--serial',
        'CAM-DEMO-2',
        '--owner',
        'carol',
        '--user',
        'erin',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(byCarol.status, 3, byCarol.stderr);
      assert.match(byCarol.stderr, /^ERR_MEMBERSHIP_NOT_OWNER: CAM-DEMO-2 refused the membership/);
      assert.deepEqual(
        readFileSync(stateLayout(cam2.stateDir).ownerState),
        stateAfterTransfer,
        'nothing changed on disk',
      );
      const back = await dev([
        'member',
        'transfer',
        '--serial',
        'CAM-DEMO-2',
        '--owner',
        'carol',
        '--to',
        'carol2',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(back.status, 3, back.stderr);
      const byDave = await dev([
        'member',
        'add',
        '--serial',
        'CAM-DEMO-2',
        '--owner',
        'dave',
        '--user',
        'erin',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(byDave.status, 0, byDave.stderr);
      assert.match(byDave.stdout, /^added erin to CAM-DEMO-2 \(membership v3, signed by dave\)/);
      const erin = await watch(devDir, 'CAM-DEMO-2', 'erin', cam2.gateUrl);
      assert.equal(erin.status, 200, erin.body);
      const carolStill = await watch(devDir, 'CAM-DEMO-2', 'carol', cam2.gateUrl);
      assert.equal(carolStill.status, 200, carolStill.body);
      const usageTo = await dev([
        'member',
        'transfer',
        '--serial',
        'CAM-DEMO-2',
        '--owner',
        'dave',
        '--to',
        'dave',
        '--dev-dir',
        devDir,
      ]);
      assert.equal(usageTo.status, 2, usageTo.stderr);
      t.diagnostic(`bob ${bob.flv} B, carol ${carol.flv} B of FLV through lenscap-dev view`);
    } finally {
      const { survivors } = await stack.stop();
      tmp.cleanup();
      assert.deepEqual(survivors, []);
    }
  },
);
