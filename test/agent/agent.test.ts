/**
 * The whole agent, composed by the controller, end to end on this machine: a real identity from
 * the dev CA, a real mosquitto over mTLS with the per-serial ACL, real ffmpeg (test pattern) and
 * the real HTTPS gate. A valid grant plays; the incident (camera A's grant at camera B) is refused
 * with not one FLV byte, and the cloud receives the misroute alarm; stop publishes offline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintGrant } from '../../scripts/dev-cloud/mint.ts';
import { provisionCamera, runAgent, startTestCloud, testAgentConfig } from '../../harness/agent-runner.ts';
import { FlvClient } from '../../harness/flv-client.ts';
import { needs } from '../../harness/requires.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { waitUntil } from '../../harness/wait.ts';

const SERIAL = 'CAM-E2E-1';

test(
  'the agent end to end: online, plays a valid grant, refuses the incident with 0 bytes, reports it, goes offline',
  { ...needs('mosquitto'), timeout: 90_000 },
  async (t) => {
    const { dir, cleanup } = makeTempDir('lenscap-agent-');
    t.after(cleanup);
    const cam = await provisionCamera(dir, SERIAL, { owner: 'alice' });
    const { pki, keys } = cam;
    const cloud = await startTestCloud(t, dir, cam);
    const { messages } = cloud;
    const agent = await runAgent(t, testAgentConfig(cam, cloud.url));
    assert.equal(agent.serial, SERIAL, 'the serial is the certificate CN');
    await agent.link!.waitOnline(15_000);
    await waitUntil(
      () => messages.some((m) => m.topic.endsWith('/state') && m.json.online === true),
      10_000,
      'retained online state',
    );

    // A valid grant plays real video over the device-certificate HTTPS gate.
    const good = mintGrant(keys.issuer, { serial: SERIAL, viewer: 'alice', ttlSeconds: 60 });
    const viewer = FlvClient.http({
      url: `${agent.gateUrl}/live/${SERIAL}.flv`,
      headers: { authorization: `Bearer ${good.token}` },
      ca: pki.caPem,
      rejectUnauthorized: false,
    });
    await viewer.waitForKeyframe(20_000);
    assert.equal(viewer.result.status, 200);
    assert.ok(viewer.result.parser.sawSequenceHeader);
    viewer.close();

    // The incident: alice's grant for another camera presented here.
    const misrouted = mintGrant(keys.issuer, { serial: 'CAM-E2E-2', viewer: 'alice', ttlSeconds: 60 });
    const stranger = FlvClient.http({
      url: `${agent.gateUrl}/live/${SERIAL}.flv`,
      headers: { authorization: `Bearer ${misrouted.token}` },
      ca: pki.caPem,
      rejectUnauthorized: false,
    });
    await stranger.waitClosed(10_000);
    assert.equal(stranger.result.status, 403);
    assert.equal(stranger.result.flvBodyBytes, 0, 'not one media byte to the wrong viewer');
    assert.deepEqual(stranger.json(), { error: 'wrong_audience' });
    await waitUntil(
      () =>
        messages.some(
          (m) =>
            m.topic.endsWith('/events') &&
            m.json.reason === 'wrong_audience' &&
            m.json.claimedAud === 'CAM-E2E-2',
        ),
      10_000,
      'the misroute alarm on events',
    );

    // A command round trip, then a clean stop publishes offline.
    await cloud.client.publishAsync(`lenscap/v1/${SERIAL}/cmd/ping`, JSON.stringify({ id: 'p1' }), {
      qos: 1,
    });
    await waitUntil(
      () => messages.some((m) => m.topic.endsWith('/reply/ping') && m.json.status === 'ok'),
      10_000,
      'ping reply',
    );
    await agent.stopOnce('test');
    await waitUntil(
      () => messages.some((m) => m.topic.endsWith('/state') && m.json.online === false),
      10_000,
      'offline state',
    );
  },
);
