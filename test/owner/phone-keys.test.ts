/**
 * The CLI's (simulated phone's) keys on disk, as ssh keeps them: `<dir>/<user>/` is 0700, the
 * private keys 0600, the public file readable; the same keys come back on the next load; a private
 * key file others can read is refused with a coded error, never used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrCreatePhoneKeys } from '../../scripts/dev-cloud/owner-phone.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { makeTempDir } from '../../harness/tmp.ts';

test('phone keys: 0700 dir, 0600 private keys, reused, refused when readable by others', (t) => {
  const tmp = makeTempDir('lenscap-phone-');
  t.after(tmp.cleanup);
  const a = loadOrCreatePhoneKeys(tmp.dir, 'alice');
  const home = join(tmp.dir, 'alice');
  assert.equal(statSync(home).mode & 0o777, 0o700);
  assert.equal(statSync(join(home, 'signing.key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(home, 'hpke.key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(home, 'public.json')).mode & 0o022, 0, 'public file writable by its owner only');
  assert.equal(loadOrCreatePhoneKeys(tmp.dir, 'alice').jkt, a.jkt, 'the same key next time');
  chmodSync(join(home, 'hpke.key.pem'), 0o640);
  assert.throws(
    () => loadOrCreatePhoneKeys(tmp.dir, 'alice'),
    (e: unknown) => isLenscapError(e, 'ERR_KEY_INVALID') && /mode 0640.*chmod 600/.test((e as Error).message),
  );
  assert.throws(() => loadOrCreatePhoneKeys(tmp.dir, '../x'), /not a file name/);
});
