// QEMU ARM board test (`npm run test:arm`; needs root, QEMU and a Debian mirror: see .ci/arm.sh).
// An emulated arm64 board (cortex-a53, TCG) whose camera is a real V4L2 device (vivid) gets the
// arm64 bundle, installs it with install-on-device.sh and runs it.
// Stage 1 (infrastructure): boot, vivid + ffmpeg live capture, install, compiled agent and
// node-media-server under Node 20 (target) and Node 18 (Debian's).
// Stage 2 (full flow): provisioning through the host's dev cloud, the agent as a hardened systemd
// service on the v4l2 driver, grants from the host (valid → FLV video; misrouted → 0 media bytes +
// a security event at the host broker), motion events (owner claim with the label code, cmd/events,
// vivid's movement set with v4l2-ctl → one snapshot + one clip sealed on the board, opened on the host
// with the owner's key), SIGTERM → offline. Fails loudly when a piece is missing.
// Skipped unless LENSCAP_TEST_ARM=1, so `npm test` never boots a VM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle } from '../../scripts/bundle.ts';
import { bootGuest, buildImage, type Guest } from '../../scripts/qemu/boot.ts';
import { missingFullFlowPieces, runFullFlowHost, type FullFlowHost } from './full-flow.ts';
import { Phases, readMarks, waitForMark } from './marks.ts';

const enabled = process.env.LENSCAP_TEST_ARM === '1';
// LENSCAP_TEST_ARM_STAGES=1 runs the infrastructure stage only and reports stage 2 as SKIPPED by
// name (an explicit choice, printed in the TAP output); the default runs both.
// LENSCAP_TEST_ARM_STAGES=2 (development) keeps only what stage 2 needs from stage 1 (network,
// camera, install) and reports the rest of stage 1 as SKIPPED.
const stages = (process.env.LENSCAP_TEST_ARM_STAGES ?? '1,2').split(',');
const stage1Wanted = stages.includes('1');
const stage2Wanted = stages.includes('2');
const root = fileURLToPath(new URL('../..', import.meta.url));
const runDir = join(root, '.qemu-cache', 'last-run');
const share = join(runDir, 'share');
const here = fileURLToPath(new URL('.', import.meta.url));

async function freeLoopbackPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe(
  'QEMU arm64 board with a V4L2 camera (vivid)',
  { skip: enabled ? false : 'set LENSCAP_TEST_ARM=1 (npm run test:arm)', timeout: 30 * 60_000 },
  () => {
    const phases = new Phases();
    let guest: Guest | undefined;
    let bundleName = '';
    let missing: string[] = [];
    let fullFlow: FullFlowHost | undefined;
    let beacon: http.Server | undefined;
    let netGuestHostPort = 0;
    const figures: Record<string, string | number> = {};

    before(async () => {
      rmSync(runDir, { recursive: true, force: true });
      mkdirSync(share, { recursive: true });
      // LENSCAP_TEST_ARM_ALLOW_TYPE_ERRORS=1: try the board with a tree mid-change (never in CI).
      const allowTypeErrors = process.env.LENSCAP_TEST_ARM_ALLOW_TYPE_ERRORS === '1';
      const bundle = await phases.run('bundle arm64', () =>
        buildBundle({
          arch: 'arm64',
          outDir: join(runDir, 'bundle'),
          allowTypeErrors,
          log: (l) => console.error(l),
        }),
      );
      bundleName = bundle.file.split('/').pop()!;
      figures['bundle arm64 (bytes)'] = bundle.bytes;
      copyFileSync(bundle.file, join(share, bundleName));
      const image = await phases.run('guest image (build or cache)', () => buildImage('arm64'));
      for (const f of [
        'common.sh',
        'scenario.sh',
        'stage2.sh',
        'nms-check.mjs',
        'watchdog-check.mjs',
        'net-check.mjs',
        'arm-figures.mjs',
      ])
        copyFileSync(join(here, 'guest', f), join(share, f));
      copyFileSync(join(root, 'scripts', 'install-on-device.sh'), join(share, 'install-on-device.sh'));
      copyFileSync(join(root, 'scripts', 'qemu', 'share', 'forward.mjs'), join(share, 'forward.mjs'));

      missing = stage2Wanted ? await missingFullFlowPieces(root) : ['(stage 2 not requested)'];
      const env: Record<string, string> = {
        BUNDLE: bundleName,
        CAP_SIZE: '320x180',
        FULL: missing.length === 0 ? '1' : '0',
        STAGE1_CHECKS: stage1Wanted ? '1' : '0',
      };
      // Network plumbing check: a host loopback service forwarded into the guest, and a guest port
      // forwarded back to host loopback.
      beacon = http.createServer((_req, res) => res.end('lenscap-host-ok'));
      await new Promise<void>((r) => beacon!.listen(0, '127.0.0.1', () => r()));
      const netHostPort = (beacon.address() as net.AddressInfo).port;
      netGuestHostPort = await freeLoopbackPort();
      env.NET_HOST_PORT = String(netHostPort);
      env.NET_GUEST_PORT = '8444';
      const guestfwd: { host: number; guest: number }[] = [{ host: netHostPort, guest: netHostPort }];
      const hostfwd: { host: number; guest: number }[] = [{ host: netGuestHostPort, guest: 8444 }];
      if (missing.length === 0) {
        fullFlow = await phases.run('host dev cloud', () =>
          runFullFlowHost({ root, share, log: (l) => console.error(l) }),
        );
        Object.assign(env, fullFlow.guestEnv);
        guestfwd.push(...fullFlow.guestfwd);
        hostfwd.push(...fullFlow.hostfwd);
      } else {
        console.error(`full flow cannot run yet; missing: ${missing.join('; ')}`);
      }
      writeFileSync(
        join(share, 'env.sh'),
        Object.entries(env)
          .map(([k, v]) => `${k}='${v.replace(/'/g, "'\\''")}'`)
          .join('\n') + '\n',
      );
      phases.start('boot');
      guest = bootGuest({
        arch: 'arm64',
        image,
        share,
        consoleLog: join(runDir, 'console.log'),
        guestfwd,
        hostfwd,
      });
    });

    after(async () => {
      await guest?.kill();
      await fullFlow?.stop();
      beacon?.close();
      const marks = readMarks(share);
      const report = phases.report(figures, marks);
      console.error(report);
      writeFileSync(join(runDir, 'report.txt'), report + '\n');
      if (existsSync(join(share, 'guest.log'))) console.error(`guest log: ${join(share, 'guest.log')}`);
    });

    test('boots to the harness (systemd, 9p share, network)', async () => {
      const f = await guest!.waitForFile('boot.uptime', 300_000);
      phases.end('boot');
      for (let i = 0; i < 20 && readFileSync(f, 'utf8').trim() === ''; i++)
        await new Promise((r) => setTimeout(r, 100));
      figures['guest boot: host wall (ms)'] = Date.now() - guest!.startedAt;
      figures['guest boot: guest uptime at harness (s)'] = readFileSync(
        join(share, 'boot.uptime'),
        'utf8',
      ).trim();
    });

    test('stage 1: vivid camera, ffmpeg capture, install-on-device.sh, Node 20 and 18', async (t) => {
      phases.start('stage 1 in guest');
      await waitForMark(guest!, share, 'net-guest-listening', 300_000);
      const answer = await fetch(`http://127.0.0.1:${netGuestHostPort}/`).then((r) => r.text());
      assert.equal(answer, 'lenscap-guest-ok', 'hostfwd: guest service reachable on host loopback');
      writeFileSync(join(share, 'net-host-fetched'), '');
      await waitForMark(guest!, share, 'network-ok', 60_000);
      await waitForMark(guest!, share, 'stage1-done', 1_200_000);
      phases.end('stage 1 in guest');
      if (!stage1Wanted) {
        t.skip(
          'LENSCAP_TEST_ARM_STAGES without 1: the stage 1 checks beyond network, camera and install were NOT RUN',
        );
        return;
      }
      figures['vivid capture frames in 3 s (320x180@30, x264 ultrafast)'] = readFileSync(
        join(share, 'capture.frames'),
        'utf8',
      ).trim();
      if (existsSync(join(share, 'unit-exposure.txt')))
        figures['systemd-analyze security'] = readFileSync(join(share, 'unit-exposure.txt'), 'utf8').trim();
      const nms = readFileSync(join(share, 'nms.txt'), 'utf8').trim().split('\n');
      figures['node-media-server 4 under'] = nms.join(', ');
      assert.ok(
        nms.some((l) => /^v20\.\S+ ok$/.test(l)),
        'node-media-server must run under the target Node 20',
      );
    });

    test(
      'stage 2: provision via host dev cloud, agent on v4l2/vivid, grants, refusal event, SIGTERM',
      { skip: stage2Wanted ? false : 'LENSCAP_TEST_ARM_STAGES=1: stage 2 (full flow) NOT RUN' },
      async () => {
        if (missing.length > 0) {
          assert.fail(`full flow cannot run: the agent lacks ${missing.join('; ')}`);
        }
        const result = await fullFlow!.drive(guest!, phases);
        Object.assign(figures, result.figures);
        const rc = await guest!.waitForFile('scenario.rc', 180_000);
        assert.equal(
          readFileSync(rc, 'utf8').trim(),
          '0',
          `guest scenario failed: ${existsSync(join(share, 'failed')) ? readFileSync(join(share, 'failed'), 'utf8') : ''}`,
        );
      },
    );
  },
);
