/**
 * What a technician meets on a first install, each as a coded error naming the path, its owner and
 * the fix: a state dir provisioned as root then used by the service user (EACCES), a file where
 * the state dir should be (EEXIST/ENOTDIR); ERR_PROVISION_TLS telling apart "not a TLS port", "the
 * server asked for a client certificate" and "not signed by --ca"; and after a final refusal no
 * pending private key left behind, nor a next run calling the earlier one "interrupted".
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../agent/clock.ts';
import { PENDING_FILE, provisionDevice, type ProvisionOptions } from '../../agent/identity/provision.ts';
import { ensureUsableStateDir } from '../../agent/storage/state-dir-access.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';
import { startDevCloudIdentity, type StartedDevCloudIdentity } from '../../scripts/dev-cloud/server.ts';
import { makeTempDir } from '../../harness/tmp.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = makeTempDir('lenscap-start-errors-');
let cloud: StartedDevCloudIdentity;
let n = 0;
before(async () => {
  chmodSync(tmp.dir, 0o755); // another user (below) must be able to reach the dirs inside
  cloud = await startDevCloudIdentity({ devDir: join(tmp.dir, 'dev') });
});
after(async () => {
  await cloud?.close();
  tmp.cleanup();
});

function opts(serial: string, token: string, extra: Partial<ProvisionOptions> = {}) {
  const lines: string[] = [];
  return {
    serial,
    token,
    url: cloud.provisioningUrl,
    caPem: cloud.caPem,
    stateDir: join(tmp.dir, `cam-${++n}`),
    clock: systemClock,
    out: (l: string) => void lines.push(l),
    lines,
    ...extra,
  } satisfies ProvisionOptions & { lines: string[] };
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string; detail?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected an error');
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

test('a file where the state dir should be: ERR_STATE_DIR_NOT_DIR naming the path, owner and fix', async () => {
  const where = join(tmp.dir, 'state-is-a-file');
  writeFileSync(where, 'oops');
  assert.throws(
    () => ensureUsableStateDir(where),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_STATE_DIR_NOT_DIR');
      assert.match(e.message, new RegExp(`${where} \\(owner uid \\d+`));
      assert.match(e.message, /is not a directory/);
      assert.match(e.message, /Fix: move it away/);
      return true;
    },
  );
  // A file where a parent should be: the same code, naming that file.
  assert.throws(() => ensureUsableStateDir(join(where, 'state')), /ERR_STATE_DIR_NOT_DIR|is not a directory/);
  // And `lenscap provision` meets it as that code too, before any key is made.
  const e = await errorOf(provisionDevice(opts('CAM-F1', 'x', { stateDir: where })));
  assert.equal(e.code, 'ERR_STATE_DIR_NOT_DIR');
});

test('state dir provisioned as root, agent run as another user: ERR_STATE_DIR_ACCESS with chown fix', (t) => {
  const asRoot = process.getuid?.() === 0;
  const state = join(tmp.dir, 'root-owned');
  mkdirSync(join(state, 'identity'), { recursive: true, mode: 0o700 });
  writeFileSync(join(state, 'identity', 'device.key'), 'not a key', { mode: 0o600 });
  // As root: the tree stays root's and the agent runs as nobody (65534). Otherwise: this user locks
  // itself out (mode 000), the same EACCES a service user meets.
  if (!asRoot) chmodSync(state, 0o000);
  else chmodSync(state, 0o700);
  t.after(() => chmodSync(state, 0o700));
  const config = join(tmp.dir, 'root-owned.json');
  writeFileSync(config, JSON.stringify({ stateDir: state }));
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'lenscap.js'), 'run', '--config', config], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, HOME: '/tmp' },
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  const out = r.stdout + r.stderr;
  assert.notEqual(r.status, 0, out);
  assert.match(out, /ERR_STATE_DIR_ACCESS/, out);
  assert.match(out, new RegExp(`may not use ${state} \\(owner uid \\d+`), out);
  if (asRoot) assert.match(out, /owner uid 0 \(root\)/);
  assert.match(out, new RegExp(`Fix: sudo chown -R \\S+: ${state}`));
  assert.doesNotMatch(out, /EACCES: permission denied, /, 'no raw EACCES');
});

test('ERR_PROVISION_TLS: not a TLS port / the server asked for a client certificate / not signed by --ca', async () => {
  const ca = DevCa.create('lenscap test server CA');
  const tls = ca.issueServer('127.0.0.1');
  const plain = http.createServer((_q, s) => s.end('{}'));
  const mtls = https.createServer(
    { key: tls.key, cert: tls.cert, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
    (_q, s) => s.end('{}'),
  );
  const mtls12 = https.createServer(
    {
      key: tls.key,
      cert: tls.cert,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      maxVersion: 'TLSv1.2',
    },
    (_q, s) => s.end('{}'),
  );
  try {
    const pPlain = await listen(plain);
    const pMtls = await listen(mtls);
    const pMtls12 = await listen(mtls12);
    const run = (port: number, caPem = ca.certPem) =>
      errorOf(provisionDevice(opts('CAM-T1', 'x', { url: `https://127.0.0.1:${port}`, caPem })));

    let e = await run(pPlain);
    assert.equal(e.code, 'ERR_PROVISION_TLS');
    assert.match(e.message, /not a TLS port/);
    for (const port of [pMtls, pMtls12]) {
      e = await run(port);
      assert.equal(e.code, 'ERR_PROVISION_TLS');
      assert.match(e.message, /asked for a client certificate/);
    }
    // The real provisioning service, but --ca names another CA.
    e = await errorOf(provisionDevice(opts('CAM-T1', 'x', { caPem: DevCa.create('someone else').certPem })));
    assert.equal(e.code, 'ERR_PROVISION_TLS');
    assert.match(e.message, /not signed by the CA given with --ca/);
    assert.doesNotMatch(e.message, /not a TLS port|client certificate/);
  } finally {
    plain.close();
    mtls.close();
    mtls12.close();
  }
});

test('a final refusal leaves no pending private key; the next run does not call it interrupted', async () => {
  const o = opts('CAM-P1', 'not-a-token-at-all');
  const e = await errorOf(provisionDevice(o));
  assert.equal(e.code, 'ERR_PROVISION_TOKEN_INVALID');
  assert.equal(existsSync(join(o.stateDir, PENDING_FILE)), false, 'no key left behind');

  const again = { ...o, token: await cloud.createToken('CAM-P1'), lines: [] as string[] };
  again.out = (l: string) => void again.lines.push(l);
  const r = await provisionDevice(again);
  assert.equal(r.status, 'provisioned');
  assert.ok(!again.lines.some((l) => /interrupted/.test(l)), again.lines.join('\n'));
  assert.ok(again.lines.some((l) => /generated an RSA-\d+ key/.test(l)));
});

test('a retryable failure keeps the key, and the next run names where the earlier one stopped', async () => {
  const port = await new Promise<number>((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
  const token = await cloud.createToken('CAM-P2');
  const o = opts('CAM-P2', token, { url: `https://127.0.0.1:${port}` });
  assert.equal((await errorOf(provisionDevice(o))).code, 'ERR_PROVISION_UNREACHABLE');
  assert.equal(existsSync(join(o.stateDir, PENDING_FILE)), true);
  const lines: string[] = [];
  const r = await provisionDevice({ ...o, url: cloud.provisioningUrl, out: (l) => void lines.push(l) });
  assert.equal(r.status, 'provisioned');
  assert.ok(
    lines.some((l) =>
      /reusing the key made by the earlier run, which stopped at ERR_PROVISION_UNREACHABLE/.test(l),
    ),
    lines.join('\n'),
  );
  assert.ok(!lines.some((l) => /interrupted/.test(l)));
  assert.equal(existsSync(join(o.stateDir, PENDING_FILE)), false);
});
