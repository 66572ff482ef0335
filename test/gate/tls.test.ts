/**
 * The gate over HTTPS with a device certificate made at run time (CN = serial): the viewer checks
 * it reached the right camera, a real signed grant is accepted, a refusal still carries no FLV
 * byte. The stream side is a small in-test source (the real pipeline is covered over HTTP).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { createGate } from '../../agent/gate/gate.ts';
import type { FlvSink } from '../../agent/stream/media-hub.ts';
import { FlvClient } from '../../harness/flv-client.ts';
import { makeGrantFixture } from '../../harness/grants-fixture.ts';

function flvTag(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(11);
  h[0] = type;
  h.writeUIntBE(body.length, 1, 3);
  const prev = Buffer.alloc(4);
  prev.writeUInt32BE(11 + body.length);
  return Buffer.concat([h, body, prev]);
}

test('HTTPS with the device certificate: right camera, real grant, refusal without media', async () => {
  const f = await makeGrantFixture();
  f.clock.now = () => Date.now();
  const key = join(f.dir, 'device.key');
  const cert = join(f.dir, 'device.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=CAM-0001',
      '-addext',
      'subjectAltName=DNS:CAM-0001,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const { config } = loadConfig(undefined, {});
  const sinks = new Set<FlvSink>();
  const stream = {
    acquire: () => () => undefined,
    attach(sink: FlvSink) {
      sinks.add(sink);
      sink.write(Buffer.from('464c5601010000000900000000', 'hex'));
      sink.write(flvTag(9, Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f])));
      sink.write(flvTag(9, Buffer.from([0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65])));
      return () => sinks.delete(sink);
    },
  };
  const privacy = Object.assign(new EventEmitter(), { isOn: () => false });
  const gate = createGate({
    serial: 'CAM-0001',
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: true },
    grants: f.gate,
    stream,
    privacy,
    clock: f.clock,
    logger: silentLogger(),
    tls: { key: readFileSync(key), cert: readFileSync(cert) },
  });
  await gate.listen();
  try {
    assert.match(gate.url!, /^https:/);
    const ca = readFileSync(cert);
    const ok = FlvClient.http({
      url: `${gate.url}/live/CAM-0001.flv`,
      ca,
      headers: { authorization: `Bearer ${f.mint()}` },
    });
    const r = await ok.waitForKeyframe(5000);
    assert.equal(r.status, 200);
    ok.close();
    const no = FlvClient.http({ url: `${gate.url}/live/CAM-0001.flv`, ca });
    const nr = await no.waitClosed();
    assert.equal(nr.status, 401);
    assert.equal(nr.flvBodyBytes, 0);
    // A viewer that does not trust this camera's certificate never gets as far as HTTP.
    const untrusted = FlvClient.http({
      url: `${gate.url}/live/CAM-0001.flv`,
      headers: { authorization: `Bearer ${f.mint()}` },
    });
    const ur = await untrusted.waitClosed();
    assert.equal(ur.status, 0);
    assert.equal(ur.flvBodyBytes, 0);
    assert.throws(
      () =>
        createGate({
          serial: 'CAM-0001',
          config: { ...config.gate, tls: true },
          grants: f.gate,
          stream,
          privacy,
          clock: f.clock,
          logger: silentLogger(),
        }),
      /no device key/,
    );
  } finally {
    await gate.close();
    f.cleanup();
  }
});
