/**
 * `npm start -- --broker rabbitmq`: the whole stack on a 3-node RabbitMQ cluster (MQTT 3.1.1, mTLS),
 * started from scratch on free ports. Both cameras come online through the cluster, both claims run
 * over it (the cloud `binding` command and the owner-held claim, whose `claim.nonce` op RabbitMQ
 * routes as two levels: the step that timed out before cloud.dotsSplitLevels), a grant plays, and
 * SIGTERM leaves no process (no Erlang VM) behind. Skips by name without rabbitmq-server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { startStackProcess } from './stack-process.ts';

async function flvHead(url: string, token: string, dpop: string): Promise<{ status: number; head: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  try {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, dpop }, signal: ac.signal });
    if (!res.ok || !res.body) return { status: res.status, head: '' };
    const reader = res.body.getReader();
    let buf = Buffer.alloc(0);
    while (buf.length < 1024) {
      const { value, done } = await reader.read();
      if (done) break;
      buf = Buffer.concat([buf, Buffer.from(value)]);
    }
    return { status: res.status, head: buf.subarray(0, 3).toString('latin1') };
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

test(
  'npm start -- --broker rabbitmq: cameras online, claimed (claim.nonce), a grant plays, nothing left behind',
  { ...needs('rabbitmq-server'), timeout: 240_000 },
  async (t) => {
    const tmp = makeTempDir('lenscap-start-rmq-');
    const started = Date.now();
    const stack = startStackProcess(tmp.dir, ['--broker', 'rabbitmq'], 180_000);
    try {
      const info = await stack.ready;
      t.diagnostic(`stack up on the cluster in ${Date.now() - started} ms`);
      assert.equal(info.brokerKind, 'rabbitmq');
      const urls = (info as unknown as { brokerUrls: string[] }).brokerUrls;
      assert.equal(urls.length, 3, 'three nodes in every camera cloud.url');
      const out = stack.output();
      assert.match(out, /\[5\/9\] claim cameras: signed binding records .* ok/);
      assert.match(out, /\[6\/9\] claim cameras with their label codes .* ok/);
      assert.match(out, /\[9\/9\] write stack\.json … ok/);

      const cams = (await (await fetch(`${info.pageUrl}/api/cameras?user=alice`)).json()) as Array<{
        serial: string;
        online: boolean;
      }>;
      assert.deepEqual(
        cams.map((c) => [c.serial, c.online]),
        [['CAM-DEMO-1', true]],
      );
      const grant = (await (
        await fetch(`${info.pageUrl}/api/grant`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user: 'alice', serial: 'CAM-DEMO-1' }),
        })
      ).json()) as { token: string; flvUrl: string; dpop?: string };
      assert.ok(grant.dpop, 'owner-held through the cluster: the grant comes with a DPoP proof');
      const flv = await flvHead(grant.flvUrl, grant.token, grant.dpop);
      assert.equal(flv.status, 200);
      assert.equal(flv.head, 'FLV');

      const { code, survivors } = await stack.stop(60_000);
      assert.equal(code, 0, stack.output());
      assert.deepEqual(survivors, [], `processes left behind: ${survivors.join(', ')}`);
      t.diagnostic(`whole run ${Date.now() - started} ms`);
    } finally {
      await stack.stop(30_000);
      tmp.cleanup();
    }
  },
);
