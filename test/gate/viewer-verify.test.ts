/**
 * How a viewer verifies a camera's HTTPS with an ordinary TLS client (docs/streaming.md): the
 * device certificate names the serial and is signed by the device CA, so
 * `curl --cacert device-ca.pem --connect-to SERIAL:PORT:ADDRESS:PORT https://SERIAL:PORT/…`
 * succeeds for the right camera and fails for another serial or another CA. The certificate is
 * issued by the dev cloud's CA from a CSR the agent's own keygen made, as in provisioning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateDeviceKey } from '../../agent/identity/keygen.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { needs, programPath } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';

test(
  'curl --connect-to checks the camera: serial named, signed by the device CA',
  needs('curl'),
  async (t) => {
    const tmp = makeTempDir();
    t.after(tmp.cleanup);
    const deviceCa = DevCa.create('lenscap dev device CA');
    const { keyPem, csrPem } = generateDeviceKey('CAM-0042', 2048);
    const cert = deviceCa.signDeviceCsr(csrPem, 'CAM-0042');
    const server = https.createServer({ key: keyPem, cert }, (_q, s) => s.end('gate\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    t.after(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const caFile = join(tmp.dir, 'device-ca.pem');
    writeFileSync(caFile, deviceCa.certPem);
    const otherCa = join(tmp.dir, 'other-ca.pem');
    writeFileSync(otherCa, DevCa.create('someone else').certPem);

    // Asynchronous: the server answering is in this process, so a blocking spawn would starve it.
    const curl = (serial: string, ca: string) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          programPath('curl')!,
          [
            '-sS',
            '--max-time',
            '10',
            '--cacert',
            ca,
            '--connect-to',
            `${serial}:8443:127.0.0.1:${port}`,
            `https://${serial}:8443/`,
          ],
          { encoding: 'utf8', timeout: 20_000 },
          (err, stdout, stderr) =>
            resolve({ status: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
        );
      });
    const ok = await curl('CAM-0042', caFile);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'gate\n');
    const wrongCamera = await curl('CAM-0043', caFile);
    assert.equal(wrongCamera.status, 60, wrongCamera.stderr); // peer certificate cannot be authenticated
    const wrongCa = await curl('CAM-0042', otherCa);
    assert.equal(wrongCa.status, 60, wrongCa.stderr);
  },
);
