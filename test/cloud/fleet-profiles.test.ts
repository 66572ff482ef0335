/**
 * docs/fleet.md against lenscap's real topics: the AWS IoT Core policy printed there, evaluated with
 * its policy variables for one thing, allows exactly what a camera does and nothing under another
 * serial; AWS's topic limits (size, depth, client id, thing name) hold for the longest serial and op
 * lenscap accepts, and the figures the doc states are the computed ones.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OP_MAX, isSafeSerial, topicsFor } from '../../agent/cloud/topics.ts';
import { configSchema } from '../../agent/config/schema.ts';

const DOC = readFileSync(new URL('../../docs/fleet.md', import.meta.url), 'utf8');

/** AWS IoT Core message broker limits (developer guide, "AWS IoT Core endpoints and quotas"). */
const AWS = { topicBytes: 256, slashes: 7, clientIdBytes: 128, thingName: /^[a-zA-Z0-9:_-]{1,128}$/ };

const LONGEST_SERIAL = 'S' + 'x'.repeat(63);
const LONGEST_OP = 'o' + 'p'.repeat(OP_MAX - 1);

function cameraTopics(serial: string, op: string) {
  const t = topicsFor(serial);
  return [t.state, t.events, t.telemetry, t.reply(op), t.commandFilter, `${t.prefix}cmd/${op}`];
}

test('AWS limits hold for the longest serial and op lenscap accepts; the doc states the computed figures', () => {
  assert.ok(isSafeSerial(LONGEST_SERIAL));
  assert.equal(isSafeSerial(LONGEST_SERIAL + 'x'), false, '64 is the longest serial');
  let maxBytes = 0;
  let maxSlashes = 0;
  for (const topic of cameraTopics(LONGEST_SERIAL, LONGEST_OP)) {
    maxBytes = Math.max(maxBytes, Buffer.byteLength(topic, 'utf8'));
    maxSlashes = Math.max(maxSlashes, topic.split('/').length - 1);
  }
  assert.ok(maxBytes <= AWS.topicBytes, `${maxBytes} bytes`);
  assert.ok(maxSlashes <= AWS.slashes, `${maxSlashes} slashes`);
  assert.ok(Buffer.byteLength(LONGEST_SERIAL) <= AWS.clientIdBytes);
  assert.match(
    DOC,
    new RegExp(`\\| ${maxBytes} bytes: \`lenscap/v1/<64-char serial>/reply/<${OP_MAX}-char op>\``),
  );
  assert.match(
    DOC,
    new RegExp(`\\| forward slashes in a topic or filter \\| ${AWS.slashes} \\| ${maxSlashes} \\|`),
  );
  // the one mismatch the doc warns about: lenscap allows '.', AWS thing names do not
  assert.ok(isSafeSerial('CAM.1') && !AWS.thingName.test('CAM.1'));
  assert.ok(AWS.thingName.test(LONGEST_SERIAL));
  assert.match(DOC, /a serial with a `\.` \(allowed by lenscap\) \*\*cannot\*\* be a thing name/);
});

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: unknown;
}

function awsPolicy(): { Statement: Statement[] } {
  const section = DOC.slice(DOC.indexOf('## AWS IoT Core'));
  const m = /```json\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'a JSON policy under "## AWS IoT Core"');
  return JSON.parse(m[1]!);
}

/** IoT policy resource matching: policy variable substituted, `*` any run, `?` one character. */
function allows(
  policy: { Statement: Statement[] },
  thing: string,
  action: string,
  resource: string,
): boolean {
  return policy.Statement.some((s) => {
    if (s.Effect !== 'Allow') return false;
    const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
    if (!actions.includes(action)) return false;
    const resources = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
    return resources.some((r) => {
      const concrete = r.replaceAll('${iot:Connection.Thing.ThingName}', thing);
      const re = new RegExp(
        '^' +
          concrete
            .split('')
            .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
            .join('') +
          '$',
      );
      return re.test(resource);
    });
  });
}

test('the AWS IoT policy in docs/fleet.md allows what a camera does, under its own thing name only', () => {
  const policy = awsPolicy();
  const arn = (kind: string, rest: string) => `arn:aws:iot:REGION:ACCOUNT:${kind}/${rest}`;
  const connect = policy.Statement.find((s) => s.Action === 'iot:Connect');
  assert.deepEqual(connect?.Condition, { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } });
  for (const serial of ['CAM-A', LONGEST_SERIAL]) {
    const t = topicsFor(serial);
    const needed: Array<[string, string]> = [
      ['iot:Connect', arn('client', serial)],
      ['iot:Publish', arn('topic', t.state)],
      ['iot:RetainPublish', arn('topic', t.state)],
      ['iot:Publish', arn('topic', t.events)],
      ['iot:Publish', arn('topic', t.telemetry)],
      ['iot:Publish', arn('topic', t.reply('stream.start'))],
      ['iot:Subscribe', arn('topicfilter', t.commandFilter)],
      ['iot:Receive', arn('topic', `${t.prefix}cmd/ping`)],
    ];
    for (const [action, resource] of needed)
      assert.ok(allows(policy, serial, action, resource), `${serial}: ${action} ${resource}`);
    // and nothing of another camera's, nor a wildcard filter, nor a retained command
    const other = topicsFor('CAM-B');
    const refused: Array<[string, string]> = [
      ['iot:Connect', arn('client', 'CAM-B')],
      ['iot:Publish', arn('topic', other.state)],
      ['iot:Publish', arn('topic', `${other.prefix}cmd/privacy`)],
      ['iot:Publish', arn('topic', `${t.prefix}cmd/privacy`)],
      ['iot:RetainPublish', arn('topic', t.events)],
      ['iot:Subscribe', arn('topicfilter', `${other.prefix}cmd/+`)],
      ['iot:Subscribe', arn('topicfilter', 'lenscap/v1/+/state')],
      ['iot:Subscribe', arn('topicfilter', `${t.prefix}#`)],
      ['iot:Receive', arn('topic', `${other.prefix}cmd/ping`)],
    ];
    for (const [action, resource] of refused)
      assert.equal(
        allows(policy, serial, action, resource),
        false,
        `${serial} must not: ${action} ${resource}`,
      );
  }
});

test('AWS: one filter per SUBSCRIBE, payloads under 128 KB, and cmd/# (RabbitMQ only) is outside the policy', () => {
  const cfg = configSchema.parse({}).cloud;
  assert.ok(cfg.commandMaxBytes <= 128 * 1024, 'the largest command payload the camera takes');
  assert.match(
    DOC,
    new RegExp(`\\| payload \\| 128 KB \\| \`cloud.commandMaxBytes\` ${cfg.commandMaxBytes / 1024} KiB`),
  );
  // the link subscribes exactly one filter (topics.commandFilter), well under AWS's 8 per SUBSCRIBE
  assert.match(DOC, /\| subscriptions per SUBSCRIBE \| 8 \| 1 \(`cmd\/\+`\) \|/);
  assert.equal(cfg.dotsSplitLevels, false, 'cmd/+ by default');
  const t = topicsFor('CAM-A', { dotsSplitLevels: true });
  assert.equal(
    allows(
      awsPolicy(),
      'CAM-A',
      'iot:Subscribe',
      `arn:aws:iot:REGION:ACCOUNT:topicfilter/${t.commandFilter}`,
    ),
    false,
    'cloud.dotsSplitLevels is for RabbitMQ: the AWS policy refuses cmd/#',
  );
});

test('EMQX profile: client id := CN, the ACL confines ${clientid} to its own prefix, no match denies', () => {
  const section = DOC.slice(DOC.indexOf('## EMQX'), DOC.indexOf('## HiveMQ'));
  assert.match(section, /mqtt\.peer_cert_as_clientid = cn/);
  assert.match(section, /verify = verify_peer/);
  assert.match(section, /fail_if_no_peer_cert = true/);
  assert.match(section, /no_match = deny/);
  assert.match(section, /listeners\.tcp\.default\.enable = false/);
  const rule = /\{allow, all, all, \["([^"]+)"\]\}/.exec(section)?.[1];
  assert.equal(rule, 'lenscap/v1/${clientid}/#');
  // every topic a camera uses lies under the rule with its own serial, none under another's
  const under = (serial: string, topic: string) =>
    topic.startsWith(rule!.replace('${clientid}', serial).slice(0, -1));
  for (const topic of cameraTopics('CAM-A', 'stream.start')) {
    assert.ok(under('CAM-A', topic), topic);
    assert.ok(!under('CAM-AB', topic) && !under('CAM', topic), topic);
  }
});
