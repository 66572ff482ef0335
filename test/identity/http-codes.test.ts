import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { postJson } from '../../agent/identity/http.ts';
import { isLenscapError } from '../../agent/errors.ts';
import { DevCa } from '../../scripts/dev-cloud/ca.ts';

// The service's error answer is input from the network: only a code the protocol defines may come
// through as the camera's error code; anything else is a bad response, not a new code.
test('a service error code outside the protocol list becomes ERR_PROVISION_BAD_RESPONSE', async (t) => {
  const ca = DevCa.create('lenscap test provisioning CA');
  const tls = ca.issueServer('localhost', { ips: ['127.0.0.1'] });
  let answer = { code: 'ERR_SOMETHING_ELSE', message: 'made up by the service' };
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    req.resume();
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: answer }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/provision`;

  const codeOf = async () => {
    try {
      await postJson(url, {}, { ca: ca.certPem, timeoutMs: 5000 });
    } catch (err) {
      assert.ok(isLenscapError(err), `a coded error, got ${String(err)}`);
      return err.code;
    }
    assert.fail('expected a refusal');
  };
  assert.equal(await codeOf(), 'ERR_PROVISION_BAD_RESPONSE');
  answer = { code: 'ERR_PROVISION_TOKEN_EXPIRED', message: 'the token expired' };
  assert.equal(await codeOf(), 'ERR_PROVISION_TOKEN_EXPIRED');
});
