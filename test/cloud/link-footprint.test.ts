/**
 * The cloud link's resident footprint (issue 18): connecting must load no transport the link never
 * uses. mqtt.js's `connect()` loads its WebSocket client (ws) and SOCKS proxy (socks, ip-address)
 * on its first call; the link builds its own mqtts stream and loads neither. Its own process (one
 * test file per process), so nothing else here has loaded them first.
 * Must never: reach beyond loopback (the broker is a TLS server on a free loopback port).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import Module from 'node:module';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { makeTempDir } from '../../harness/tmp.ts';
import { makeLink, makePki, testConfig, waitFor, writeState } from './fixture.ts';

test('connecting over mqtts loads neither ws nor socks', { timeout: 30_000 }, async (t) => {
  const tmp = makeTempDir('lenscap-footprint-');
  const pki = makePki();
  // A TLS server that takes the handshake and then says nothing: the attempt is real, the CONNECT
  // goes unanswered.
  let handshakes = 0;
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ key: pki.broker.key, cert: pki.broker.cert }, (s) => {
    handshakes++;
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const a = makeLink({
    serial: 'CAM-F',
    paths: writeState(`${tmp.dir}/f`, pki, 'CAM-F'),
    config: testConfig(`mqtts://127.0.0.1:${port}`, { protocolVersion: 4 }),
  });
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await a.link.stop().catch(() => undefined);
    a.queue.close();
    await new Promise((r) => server.close(r));
    tmp.cleanup();
  });
  a.link.start();
  await waitFor(() => handshakes > 0, 10_000, 'the link to reach the TLS server');
  const loaded = Object.keys((Module as unknown as { _cache: Record<string, unknown> })._cache);
  const heavy = loaded.filter((f) => /\/node_modules\/(ws|socks|ip-address)\//.test(f));
  assert.deepEqual(heavy, [], 'transports the link never uses stay unloaded');
});
