import { z } from 'zod';

const brokerUrl = z
  .string()
  .regex(/^(mqtts|tls|ssl):\/\/[^/?#\s]+\/?$/, 'an mqtts:// URL (TLS is mandatory): mqtts://host[:port]');

export const cloudSection = z
  .object({
    url: z
      .union([brokerUrl, z.array(brokerUrl).min(1).max(32)])
      .optional()
      .describe(
        'Broker URL, e.g. mqtts://broker.example.com:8883, or a list of them (the nodes of a cluster). A host name with several addresses counts as several endpoints. The link starts at a random endpoint and moves to the next one after a failed attempt or a lost connection, at the pace of cloud.backoff. Unset: the agent runs without a cloud link.',
      ),
    servername: z.string().optional().describe('TLS server name to check; defaults to the URL host.'),
    protocolVersion: z
      .union([z.literal(5), z.literal(4)])
      .default(5)
      .describe('MQTT 5 (5) or 3.1.1 (4).'),
    keepaliveSeconds: z.number().int().min(5).max(1200).default(60).describe('MQTT keepalive.'),
    connectTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(120000)
      .default(15000)
      .describe('Give up on a TCP+TLS+CONNACK exchange after this long (counts as a failed attempt).'),
    backoff: z
      .object({
        baseMs: z.number().int().positive().default(1000).describe('First backoff step.'),
        capMs: z
          .number()
          .int()
          .positive()
          .default(120000)
          .describe('Backoff ceiling, applied before jitter.'),
        resetAfterMs: z
          .number()
          .int()
          .positive()
          .default(30000)
          .describe('The attempt counter resets only after the link stayed up this long.'),
        initialDelayMaxMs: z
          .number()
          .int()
          .min(0)
          .default(10000)
          .describe('Random delay before the first connect after boot or a long outage.'),
        longOutageMs: z
          .number()
          .int()
          .positive()
          .default(300000)
          .describe('An outage longer than this counts as long (initial delay applies again).'),
        dropDelayMaxMs: z
          .number()
          .int()
          .min(0)
          .default(10000)
          .describe(
            'After a lost connection, every retry until the next connection waits a random time up to at least this: a broker node that dies drops all its cameras at once, and they must not all land on the other nodes (or on the returning broker) in the same second. Never above capMs; 0: the ordinary backoff window. A fleet needs about devices / broker connect budget (s).',
          ),
        outageSpread: z
          .number()
          .min(0)
          .max(20)
          .default(5)
          .describe(
            "After a lost connection, every retry window is also at least this × how long the link has been down so far (capped by capMs). When the broker returns after an outage of T the fleet first offers about 2 × devices / W connects per second, W being the devices' current windows: with W ≥ 5 × T a longer outage, which leaves more of the fleet waiting, gets a proportionally wider spread (a 30 s outage: retries spread over the 120 s cap; simulated peak ≤ 4.4 %/s of a 1,000 fleet, 99 % back within ~115 s). 5 rather than 3 keeps room for the bunching a saturated machine adds (3 measured 5.0 and 8.1 %/s). The first retry after the drop still uses dropDelayMaxMs. 0: off. See docs/fleet.md.",
          ),
        authRetryMs: z
          .number()
          .int()
          .positive()
          .default(900000)
          .describe(
            'Retry pace after the broker refused the identity (not authorized / bad credentials): a random time in the upper half of this.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Reconnect policy: exponential backoff with full jitter.'),
    commandQos: z
      .union([z.literal(1), z.literal(0)])
      .default(1)
      .describe(
        'QoS of the command subscription (cmd/+). 0 on RabbitMQ 3.10: its clean-session QoS 1 subscription queue is a durable classic queue on one node, and while that node is down the camera cannot subscribe anywhere (see docs/fleet.md). Commands are live either way; the cloud retries one that got no reply.',
      ),
    dotsSplitLevels: z
      .boolean()
      .default(false)
      .describe(
        'True on a broker that turns a "." in a topic into a level separator: RabbitMQ 3.10 maps MQTT "/" to "." in its routing keys and keeps ".", so a dotted op (cmd/claim.nonce) becomes two levels that cmd/+ never matches, and arrives as cmd/claim/nonce. When true the link subscribes cmd/# and reads cmd/claim/nonce as the op claim.nonce, and a serial containing "." is refused (its topics would collide with those of another serial).',
      ),
    followServerReference: z
      .boolean()
      .default(false)
      .describe('Honour MQTT 5 "use another server" / "server moved" references.'),
    commandMaxBytes: z
      .number()
      .int()
      .positive()
      .default(65536)
      .describe('Command payloads larger than this are refused.'),
    eventQueue: z
      .object({
        maxEvents: z.number().int().positive().default(10000).describe('Bound on queued security events.'),
        maxBytes: z
          .number()
          .int()
          .positive()
          .default(5 * 1024 * 1024)
          .describe('Bound on the queue file size.'),
      })
      .strict()
      .prefault({})
      .describe('On-disk queue of security events awaiting delivery.'),
  })
  .strict()
  .prefault({})
  .describe('MQTT link to the cloud over mutual TLS.');
