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
import { readFlvHead } from '../../harness/flv-client.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { pageCameras, pageGrant, startStackProcess } from './stack-process.ts';

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

      assert.deepEqual(await pageCameras(info.pageUrl, 'alice'), [['CAM-DEMO-1', true]]);
      const { body: grant } = await pageGrant(info.pageUrl, 'alice', 'CAM-DEMO-1');
      assert.ok(grant.dpop, 'owner-held through the cluster: the grant comes with a DPoP proof');
      const flv = await readFlvHead(grant.flvUrl, grant.token, grant.dpop, { max: 1024 });
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
