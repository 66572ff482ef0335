/**
 * The HTTPS PUT against the real dev object store (s3rver over HTTPS, SigV4 checked in front of it)
 * with URLs signed by @aws-sdk/s3-request-presigner: an upload lands byte for byte; an http URL, a
 * foreign host, an expired or altered signature, a wrong CA or a changed file each give their code,
 * and none of them stores a byte.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isLenscapError } from '../../agent/errors.ts';
import { putArtifact } from '../../agent/uploads/put.ts';
import { startObjectStore, type ObjectStore } from '../../scripts/dev-cloud/object-store.ts';
import { makeTestPki } from '../../harness/pki.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { writeArtifact } from './helpers.ts';

const tmp = makeTempDir('lenscap-put-');
const pki = makeTestPki(tmp.dir);
let store: ObjectStore;

test.before(async () => {
  store = await startObjectStore({ dir: join(tmp.dir, 's3'), tls: pki.server, caPem: pki.serverCaPem });
});
test.after(async () => {
  await store.close();
  tmp.cleanup();
});

const spool = join(tmp.dir, 'spool');
const put = (url: string, a: ReturnType<typeof writeArtifact>, extra: { host?: string; ca?: string } = {}) =>
  putArtifact({
    url,
    artifact: a,
    uploadHost: extra.host ?? store.host,
    ca: extra.ca ?? pki.serverCaPem,
    timeoutMs: 5000,
  });
const code = (c: string) => (err: unknown) => isLenscapError(err) && err.code === c;

test('a presigned PUT stores the sealed bytes exactly', async () => {
  const a = writeArtifact(spool, { serial: 'CAM-P1', kind: 'clip', size: 70_000 });
  const key = `CAM-P1/${a.id}.sealed`;
  await put(await store.presignPut(key, { size: a.size, sha256: a.sha256, expiresInSeconds: 60 }), a);
  const got = await store.get(key);
  assert.ok(got);
  const { readFileSync } = await import('node:fs');
  assert.ok(got.equals(readFileSync(a.path)));
  // Idempotent: the same artifact again overwrites the object with the same bytes.
  await put(await store.presignPut(key, { size: a.size, sha256: a.sha256, expiresInSeconds: 60 }), a);
  assert.ok((await store.get(key))?.equals(readFileSync(a.path)));
});

test('refused before any connection: http, another host, userinfo, no host configured', async () => {
  const a = writeArtifact(spool, { serial: 'CAM-P1', kind: 'snapshot', size: 100 });
  const url = await store.presignPut(`CAM-P1/${a.id}.sealed`, {
    size: a.size,
    sha256: a.sha256,
    expiresInSeconds: 60,
  });
  const before = store.counters();
  await assert.rejects(put(url.replace('https:', 'http:'), a), code('ERR_UPLOAD_URL_SCHEME'));
  await assert.rejects(put(url.replace('127.0.0.1', 'localhost'), a), code('ERR_UPLOAD_URL_HOST'));
  await assert.rejects(put(url, a, { host: 'store.example.com' }), code('ERR_UPLOAD_URL_HOST'));
  await assert.rejects(put(url.replace('https://', 'https://u:p@'), a), code('ERR_UPLOAD_URL_INVALID'));
  await assert.rejects(
    putArtifact({ url, artifact: a, uploadHost: undefined, timeoutMs: 1000 }),
    code('ERR_UPLOAD_NOT_CONFIGURED'),
  );
  assert.deepEqual(store.counters(), before, 'not one request reached the store');
  assert.equal(await store.get(`CAM-P1/${a.id}.sealed`), undefined);
});

test('the store refuses an expired or altered signature; nothing is stored', async () => {
  const a = writeArtifact(spool, { serial: 'CAM-P1', kind: 'clip', size: 1000 });
  const key = `CAM-P1/${a.id}.sealed`;
  const expired = await store.presignPut(key, {
    size: a.size,
    sha256: a.sha256,
    expiresInSeconds: 5,
    signingDate: new Date(Date.now() - 60_000),
  });
  await assert.rejects(put(expired, a), code('ERR_UPLOAD_URL_EXPIRED'));
  // Signed for another key (the path is bound), another size, another checksum.
  const other = await store.presignPut(`CAM-P1/other.sealed`, {
    size: a.size,
    sha256: a.sha256,
    expiresInSeconds: 60,
  });
  await assert.rejects(put(other.replace('other.sealed', `${a.id}.sealed`), a), (err) => {
    return (
      isLenscapError(err) &&
      err.code === 'ERR_UPLOAD_HTTP_STATUS' &&
      err.detail?.s3Code === 'SignatureDoesNotMatch'
    );
  });
  const wrongSize = await store.presignPut(key, { size: a.size + 1, sha256: a.sha256, expiresInSeconds: 60 });
  await assert.rejects(put(wrongSize, a), code('ERR_UPLOAD_HTTP_STATUS'));
  const wrongSum = await store.presignPut(key, {
    size: a.size,
    sha256: 'ab'.repeat(32),
    expiresInSeconds: 60,
  });
  await assert.rejects(put(wrongSum, a), code('ERR_UPLOAD_HTTP_STATUS'));
  assert.equal(await store.get(key), undefined);
});

test('a store certificate from another CA is refused (ERR_UPLOAD_TLS); no client certificate is needed', async () => {
  const a = writeArtifact(spool, { serial: 'CAM-P1', kind: 'clip', size: 100 });
  const url = await store.presignPut(`CAM-P1/${a.id}.sealed`, {
    size: a.size,
    sha256: a.sha256,
    expiresInSeconds: 60,
  });
  const before = store.counters();
  await assert.rejects(put(url, a, { ca: pki.caPem }), code('ERR_UPLOAD_TLS'));
  assert.deepEqual(store.counters(), before);
});

test('a sealed file changed on disk is never sent as the recorded one', async () => {
  const a = writeArtifact(spool, { serial: 'CAM-P1', kind: 'clip', size: 100 });
  const url = await store.presignPut(`CAM-P1/${a.id}.sealed`, {
    size: a.size,
    sha256: a.sha256,
    expiresInSeconds: 60,
  });
  writeFileSync(a.path, Buffer.alloc(100, 7));
  const before = store.counters();
  await assert.rejects(put(url, a), code('ERR_UPLOAD_FILE_MISMATCH'));
  assert.deepEqual(store.counters(), before);
});
