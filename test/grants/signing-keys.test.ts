/**
 * The dev cloud's signing keys: created once with private parts 0600, reused, consistent with the
 * trust bundle even when several processes create them at the same moment, and rotatable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { verifyTrustBundle } from '../../agent/grants/trust-bundle.ts';
import { loadOrCreateSigningKeys, rotateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { makeTempDir } from '../../harness/tmp.ts';

test('created once, reused, private files 0600, the bundle lists exactly the issuer and binding keys', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const a = await loadOrCreateSigningKeys(dir);
  const b = await loadOrCreateSigningKeys(dir);
  assert.equal(a.issuer.kid, b.issuer.kid);
  assert.equal(a.trustBundle, b.trustBundle);
  assert.equal(a.trustVersion, 1);
  assert.equal(new Set([a.root.kid, a.issuer.kid, a.binding.kid]).size, 3);
  assert.equal('d' in a.trustRootJwk, false, 'the pinned root JWK is public only');
  const bundle = verifyTrustBundle(a.trustBundle, a.trustRootJwk);
  assert.deepEqual([...bundle.issuerKeys.keys()], [a.issuer.kid]);
  assert.deepEqual([...bundle.bindingKeys.keys()], [a.binding.kid]);
  const keyDir = join(dir, 'keys');
  assert.equal(statSync(keyDir).mode & 0o777, 0o700);
  for (const f of readdirSync(keyDir).filter((n) => n.endsWith('.jwk.json')))
    assert.equal(statSync(join(keyDir, f)).mode & 0o777, 0o600, f);
  assert.deepEqual(
    readdirSync(keyDir).filter((n) => n.endsWith('.tmp')),
    [],
  );

  const r = await rotateSigningKeys(dir);
  assert.equal(r.trustVersion, 2);
  assert.notEqual(r.issuer.kid, a.issuer.kid);
  assert.equal(r.binding.kid, a.binding.kid);
  assert.equal(verifyTrustBundle(r.trustBundle, a.trustRootJwk, { minVersion: 1 }).version, 2);
  const reloaded = await loadOrCreateSigningKeys(dir);
  assert.equal(reloaded.issuer.kid, r.issuer.kid);
  assert.equal(reloaded.trustVersion, 2);
});

test('two processes creating the keys at once end up with one consistent set', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const script = `
    const { loadOrCreateSigningKeys } = await import(${JSON.stringify(new URL('../../scripts/dev-cloud/signing-keys.ts', import.meta.url).href)});
    const k = await loadOrCreateSigningKeys(${JSON.stringify(dir)});
    process.stdout.write(JSON.stringify({ root: k.root.kid, issuer: k.issuer.kid, binding: k.binding.kid, bundle: k.trustBundle }));
  `;
  const run = () =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`child exited ${code}: ${err}`));
      });
    });
  const results = (await Promise.all([run(), run()])).map(
    (o) => JSON.parse(o) as { root: string; issuer: string; binding: string; bundle: string },
  );
  const mine = await loadOrCreateSigningKeys(dir);
  for (const r of results) {
    assert.deepEqual(
      { root: r.root, issuer: r.issuer, binding: r.binding },
      { root: mine.root.kid, issuer: mine.issuer.kid, binding: mine.binding.kid },
    );
    const bundle = verifyTrustBundle(r.bundle, mine.trustRootJwk);
    assert.ok(bundle.issuerKeys.has(mine.issuer.kid) && bundle.bindingKeys.has(mine.binding.kid));
  }
});
