/**
 * The RabbitMQ definitions the dev cloud imports in one batch (scripts/dev-cloud/broker-rabbitmq.ts),
 * checked as data: each serial's topic rule matches its own routing keys only. RabbitMQ 3.10 maps an
 * MQTT topic to a routing key by turning `/` into `.` and keeping `.` (rabbit_mqtt_util:to_amqp), so a
 * dotted serial would be two levels and fall under another serial's rule: refused with a coded error.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { cloudDefinitions, deviceDefinitions } from '../../scripts/dev-cloud/broker-rabbitmq.ts';

/** What RabbitMQ 3.10's MQTT plugin does to a topic (to_amqp: `/` → `.`, `+` → `*`; `.` kept). */
const toAmqp = (topic: string) => topic.replace(/\//g, '.').replace(/\+/g, '*');

type Defs = {
  users: Array<{ name: string; password_hash: string }>;
  permissions: Array<{ user: string; configure: string }>;
  topic_permissions: Array<{ user: string; write: string; read: string }>;
};

test('one batch of definitions for hundreds of serials: no password, own queue, own prefix', () => {
  const serials = Array.from({ length: 500 }, (_, i) => `FLEET-${i}`);
  const d = deviceDefinitions(serials) as unknown as Defs;
  assert.equal(d.users.length, 500);
  assert.ok(
    d.users.every((u) => u.password_hash === ''),
    'certificate login only',
  );
  const rule = (user: string) => new RegExp(d.topic_permissions.find((p) => p.user === user)!.write);
  const r1 = rule('FLEET-1');
  assert.ok(r1.test(toAmqp('lenscap/v1/FLEET-1/state')));
  assert.ok(r1.test(toAmqp('lenscap/v1/FLEET-1/cmd/claim.nonce')));
  assert.ok(!r1.test(toAmqp('lenscap/v1/FLEET-10/state')), 'FLEET-1 is not a prefix of FLEET-10');
  assert.ok(!r1.test(toAmqp('lenscap/v1/FLEET-2/state')));
  assert.ok(!r1.test(toAmqp('lenscap/v1/+/state')), 'no wildcard over other serials');
  const q = new RegExp(d.permissions.find((p) => p.user === 'FLEET-1')!.configure);
  assert.ok(q.test('mqtt-subscription-FLEET-1qos0') && q.test('mqtt-subscription-FLEET-1qos1'));
  assert.ok(!q.test('mqtt-subscription-FLEET-10qos1'));
  const c = cloudDefinitions('lenscap-cloud') as unknown as Defs;
  assert.ok(new RegExp(c.topic_permissions[0]!.read).test(toAmqp('lenscap/v1/+/reply/#')));
});

test('a serial with "." is refused for RabbitMQ (it would fall under another serial\'s rule)', () => {
  // Why: serial CAM's rule ^lenscap\.v1\.CAM\. matches CAM.1's routing keys.
  const cam = new RegExp((deviceDefinitions(['CAM']) as unknown as Defs).topic_permissions[0]!.write);
  assert.ok(cam.test(toAmqp('lenscap/v1/CAM.1/state')), 'the collision a dotted serial would cause');
  assert.throws(() => deviceDefinitions(['CAM.1']), { code: 'ERR_BROKER_SERIAL' });
  assert.throws(() => deviceDefinitions(['OK-1', 'a.b']), { code: 'ERR_BROKER_SERIAL' });
  assert.throws(() => deviceDefinitions(['CAM/+']), { code: 'ERR_BROKER_SERIAL' });
});
