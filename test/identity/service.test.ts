/**
 * The dev provisioning service over real HTTPS with real certificates and real token files: a
 * token redeemed once (again only by the same key), bound to its serial and expiry; the response
 * verifies (cert chains to the device CA, trust bundle signed by the root); renewal over mTLS needs
 * a valid device cert and a fresh key; the issued cert authenticates to a real mosquitto as its
 * serial. Every refusal asserts its code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { ManualClock } from '../../agent/clock.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { postJson } from '../../agent/identity/http.ts';
import { generateDeviceKey } from '../../agent/identity/keygen.ts';
import {
  PROVISION_PATH,
  RENEW_PATH,
  SERVICE_ERRORS,
  provisionResponse,
  renewResponse,
} from '../../agent/identity/protocol.ts';
import { verifyTrustBundle } from '../../agent/grants/trust-bundle.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { devLayout } from '../../scripts/dev-cloud/layout.ts';
import {
  createToken,
  startDevCloudIdentity,
  type StartedDevCloudIdentity,
} from '../../scripts/dev-cloud/server.ts';
import { startMosquitto } from '../../harness/mosquitto.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const clock = new ManualClock(Date.now());
const tmp = makeTempDir('lenscap-svc-');
let cloud: StartedDevCloudIdentity;
// One device key for most cases: key generation is the slow part.
const keyA = generateDeviceKey('CAM-0001');

test.before(async () => {
  cloud = await startDevCloudIdentity({ devDir: tmp.dir, clock });
});
test.after(async () => {
  await cloud.close();
  tmp.cleanup();
});

async function provision(body: { serial: string; token: string; csr: string }) {
  const r = await postJson(`${cloud.provisioningUrl}${PROVISION_PATH}`, body, { ca: cloud.caPem });
  return provisionResponse.parse(r.json);
}

async function refusedWith(p: Promise<unknown>, code: string, status?: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLenscapError(err), `expected a LenscapError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (status !== undefined) assert.equal(err.detail?.status, status);
    return true;
  });
}

let provisioned: { keyPem: string; certPem: string } | undefined;

test('provision: cert for the serial from the device CA, broker CA, verified trust bundle; token spent', async () => {
  const token = await cloud.createToken('CAM-0001');
  const res = await provision({ serial: 'CAM-0001', token, csr: keyA.csrPem });
  const cert = new X509Certificate(res.certPem);
  const ca = new X509Certificate(res.deviceCaPem);
  assert.equal(res.serial, 'CAM-0001');
  assert.match(cert.subject, /CN=CAM-0001/);
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
  assert.equal(cert.subjectAltName, 'URI:urn:lenscap:device:CAM-0001');
  assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(keyA.keyPem)));
  assert.equal(res.deviceCaPem, cloud.deviceCaPem);
  assert.equal(res.brokerCaPem, cloud.brokerCaPem);
  assert.equal(res.renewUrl, `${cloud.provisioningUrl}${RENEW_PATH}`);
  assert.ok(Math.abs(Date.parse(res.serverTime) - clock.now()) < 1000);
  const bundle = verifyTrustBundle(res.trustBundle, res.trustRootJwk);
  assert.ok(bundle.version >= 1);
  provisioned = { keyPem: keyA.keyPem, certPem: res.certPem };

  // The same key may redeem again (lost response) and gets the same certificate …
  const again = await provision({ serial: 'CAM-0001', token, csr: keyA.csrPem });
  assert.equal(again.certPem, res.certPem);
  // … any other key may not.
  const other = generateDeviceKey('CAM-0001');
  await refusedWith(
    provision({ serial: 'CAM-0001', token, csr: other.csrPem }),
    SERVICE_ERRORS.tokenUsed,
    409,
  );
  assert.deepEqual(cloud.service.counters().provisioned, 1);
});

test('token files never hold the token; 0600 in a 0700 dir', async () => {
  const token = await createToken(tmp.dir, 'CAM-0009', 60, clock);
  const dir = devLayout(tmp.dir).tokensDir;
  assert.equal(statSync(dir).mode & 0o077, 0);
  for (const f of readdirSync(dir)) {
    assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600);
    assert.ok(!readFileSync(join(dir, f), 'utf8').includes(token));
  }
});

test('refusals: unknown token, token for another serial, expired token, CSR for another CN, bad serial', async () => {
  await refusedWith(
    provision({ serial: 'CAM-0001', token: 'lct_' + 'A'.repeat(43), csr: keyA.csrPem }),
    SERVICE_ERRORS.tokenInvalid,
    401,
  );
  await refusedWith(
    provision({ serial: 'CAM-0001', token: 'not-a-token', csr: keyA.csrPem }),
    SERVICE_ERRORS.tokenInvalid,
    401,
  );

  const forTwo = await cloud.createToken('CAM-0002');
  await refusedWith(
    provision({ serial: 'CAM-0001', token: forTwo, csr: keyA.csrPem }),
    SERVICE_ERRORS.serialNotAllowed,
    403,
  );

  const short = await cloud.createTokenFor('CAM-0001', 60);
  clock.advance(61_000);
  await refusedWith(
    provision({ serial: 'CAM-0001', token: short, csr: keyA.csrPem }),
    SERVICE_ERRORS.tokenExpired,
    401,
  );

  // A CSR naming CAM-0001 with CAM-0002's token: refused, and the token is not spent by it.
  const forTwoAgain = await cloud.createToken('CAM-0002');
  await refusedWith(
    provision({ serial: 'CAM-0002', token: forTwoAgain, csr: keyA.csrPem }),
    SERVICE_ERRORS.badRequest,
    400,
  );
  const keyB = generateDeviceKey('CAM-0002');
  const ok = await provision({ serial: 'CAM-0002', token: forTwoAgain, csr: keyB.csrPem });
  assert.equal(ok.serial, 'CAM-0002');

  await refusedWith(
    provision({ serial: 'lenscap-cloud', token: forTwoAgain, csr: keyA.csrPem }),
    SERVICE_ERRORS.badRequest,
    400,
  );
  // Every cloud-side client's CN is lenscap-cloud-<role>: no camera may be certified as one.
  await refusedWith(
    provision({ serial: 'lenscap-cloud-bench', token: forTwoAgain, csr: keyA.csrPem }),
    SERVICE_ERRORS.badRequest,
    400,
  );
});

test('two cameras racing with one token: exactly one gets a certificate', async () => {
  const token = await cloud.createToken('CAM-0005');
  const [k1, k2] = [generateDeviceKey('CAM-0005'), generateDeviceKey('CAM-0005')];
  const results = await Promise.allSettled([
    provision({ serial: 'CAM-0005', token, csr: k1.csrPem }),
    provision({ serial: 'CAM-0005', token, csr: k2.csrPem }),
  ]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.ok(isLenscapError(lost.reason, SERVICE_ERRORS.tokenUsed));
});

test('renewal over mTLS: fresh key required, device cert required, CN bound to the client cert', async () => {
  assert.ok(provisioned, 'needs the provisioning test');
  const url = `${cloud.provisioningUrl}${RENEW_PATH}`;
  const fresh = generateDeviceKey('CAM-0001');
  const r = renewResponse.parse(
    (
      await postJson(
        url,
        { csr: fresh.csrPem },
        { ca: cloud.caPem, key: provisioned.keyPem, cert: provisioned.certPem },
      )
    ).json,
  );
  const renewed = new X509Certificate(r.certPem);
  assert.match(renewed.subject, /CN=CAM-0001/);
  assert.notEqual(renewed.serialNumber, new X509Certificate(provisioned.certPem).serialNumber);
  assert.ok(renewed.checkPrivateKey((await import('node:crypto')).createPrivateKey(fresh.keyPem)));

  // Same key again: refused (renewal means a fresh key).
  await refusedWith(
    postJson(
      url,
      { csr: keyA.csrPem },
      { ca: cloud.caPem, key: provisioned.keyPem, cert: provisioned.certPem },
    ),
    SERVICE_ERRORS.badRequest,
    400,
  );
  // No client cert.
  await refusedWith(
    postJson(url, { csr: fresh.csrPem }, { ca: cloud.caPem }),
    SERVICE_ERRORS.renewUnauthenticated,
    401,
  );
  // A cert from a foreign CA with the same CN.
  const foreign = DevCa.create('foreign').issueClient('CAM-0001');
  await refusedWith(
    postJson(url, { csr: fresh.csrPem }, { ca: cloud.caPem, ...foreign }),
    SERVICE_ERRORS.renewUnauthenticated,
    401,
  );
  // CAM-0001's cert asking for CAM-0002.
  const two = generateDeviceKey('CAM-0002');
  await refusedWith(
    postJson(
      url,
      { csr: two.csrPem },
      { ca: cloud.caPem, key: provisioned.keyPem, cert: provisioned.certPem },
    ),
    SERVICE_ERRORS.renewSerialMismatch,
    403,
  );
});

test('renewal with an expired device cert is refused (re-provision instead)', async () => {
  const devCa = (await import('../../scripts/dev-cloud/ca.ts')).loadOrCreateDevCas(tmp.dir).deviceCa;
  const expired = devCa.issueClient('CAM-0003', {
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    days: 1,
  });
  const fresh = generateDeviceKey('CAM-0003');
  await refusedWith(
    postJson(`${cloud.provisioningUrl}${RENEW_PATH}`, { csr: fresh.csrPem }, { ca: cloud.caPem, ...expired }),
    SERVICE_ERRORS.renewUnauthenticated,
    401,
  );
});

test('restart on the same dev dir keeps the CAs; a used token stays used', async () => {
  const token = await cloud.createToken('CAM-0004');
  const k = generateDeviceKey('CAM-0004');
  await provision({ serial: 'CAM-0004', token, csr: k.csrPem });
  const second = await startDevCloudIdentity({ devDir: tmp.dir, clock });
  try {
    assert.equal(second.deviceCaPem, cloud.deviceCaPem);
    assert.equal(second.caPem, cloud.caPem);
    assert.equal(second.brokerTls.cert, cloud.brokerTls.cert);
    const other = generateDeviceKey('CAM-0004');
    await refusedWith(
      postJson(
        `${second.provisioningUrl}${PROVISION_PATH}`,
        { serial: 'CAM-0004', token, csr: other.csrPem },
        { ca: second.caPem },
      ),
      SERVICE_ERRORS.tokenUsed,
      409,
    );
  } finally {
    await second.close();
  }
});

test(
  'the provisioned cert authenticates to mosquitto (dev broker cert) with the serial as username',
  needs('mosquitto'),
  async () => {
    assert.ok(provisioned);
    const mq = await startMosquitto({
      dir: join(tmp.dir, 'mq'),
      caPem: cloud.deviceCaPem,
      serverCert: cloud.brokerTls.cert,
      serverKey: cloud.brokerTls.key,
      acl: 'pattern readwrite lenscap/v1/%u/#\n',
    });
    try {
      const c = await mqtt.connectAsync(mq.url, {
        key: provisioned.keyPem,
        cert: provisioned.certPem,
        ca: cloud.brokerCaPem,
        reconnectPeriod: 0,
        connectTimeout: 4000,
      });
      await c.endAsync();
      await mq.waitForLog(/u'CAM-0001'/);
      assert.ok(mq.usernames().includes('CAM-0001'));
    } finally {
      await mq.stop();
    }
  },
);
