/**
 * The topic tree of one camera: everything lives under `lenscap/v1/<serial>/`. Builds the topics
 * the link may use and classifies incoming ones. Must never build or accept a topic outside this
 * camera's own prefix, and must never let a serial or op carry MQTT wildcards or separators.
 * On a broker whose routing keys split on "." (RabbitMQ 3.10: MQTT `/` becomes `.` and `.` stays, so
 * `cmd/claim.nonce` is routed as three levels and delivered back as `cmd/claim/nonce`), the command
 * filter is `cmd/#` and the levels after `cmd/` are read back as one dotted op; a dotted serial is then
 * refused, since its levels would fall under another serial's prefix (`A.B` under `A`).
 */
import { LenscapError } from '../errors.ts';

export const TOPIC_ROOT = 'lenscap/v1';

/** Same rule as config.serial: one topic level, no wildcards, no separators. */
const SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Command ops: lower-case words joined by dots (`ping`, `stream.start`). */
export const OP_RE = /^[a-z][a-z0-9]*(?:\.[a-z][a-z0-9]*)*$/;
export const OP_MAX = 32;

export function isSafeSerial(serial: string): boolean {
  return SERIAL_RE.test(serial);
}

export function isValidOp(op: string): boolean {
  return op.length <= OP_MAX && OP_RE.test(op);
}

export interface TopicOptions {
  /** The broker treats "." in a topic as a level separator (RabbitMQ's MQTT plugin). */
  dotsSplitLevels?: boolean;
}

export interface Topics {
  prefix: string;
  /** Whether the broker splits levels on "." (see {@link TopicOptions}). */
  dotsSplitLevels: boolean;
  /** Retained `{"online":true,...}`; the last will sets `{"online":false}`. */
  state: string;
  telemetry: string;
  /** Security events, QoS 1. */
  events: string;
  /** Metadata of uploaded event artifacts (snapshots, clips), QoS 1. */
  motion: string;
  /** A request of the camera's own to the cloud (`req/<op>`); the answer comes as the command `<op>`. */
  request(op: string): string;
  /** The one subscription: `cmd/+` (`cmd/#` where dots split levels). */
  commandFilter: string;
  reply(op: string): string;
  /** Whether `topic` is a concrete topic this camera may publish to. */
  owns(topic: string): boolean;
}

export function topicsFor(serial: string, opts: TopicOptions = {}): Topics {
  if (!isSafeSerial(serial))
    throw new LenscapError('ERR_CLOUD_SERIAL', `serial "${serial}" cannot be a topic level`);
  const dotsSplitLevels = opts.dotsSplitLevels === true;
  if (dotsSplitLevels && serial.includes('.'))
    throw new LenscapError(
      'ERR_CLOUD_SERIAL',
      `serial "${serial}" contains "." and the broker splits topic levels on "." (cloud.dotsSplitLevels): its topics would fall under another serial's prefix`,
    );
  const prefix = `${TOPIC_ROOT}/${serial}/`;
  return {
    prefix,
    dotsSplitLevels,
    state: `${prefix}state`,
    telemetry: `${prefix}telemetry`,
    events: `${prefix}events`,
    motion: `${prefix}motion`,
    request(op: string): string {
      if (!isValidOp(op))
        throw new LenscapError('ERR_CLOUD_TOPIC', `op "${op.slice(0, 40)}" cannot be a topic level`);
      return `${prefix}req/${op}`;
    },
    // `#`, not `+`: a dotted op is several levels on such a broker (the ACL still confines the filter).
    commandFilter: dotsSplitLevels ? `${prefix}cmd/#` : `${prefix}cmd/+`,
    reply(op: string): string {
      if (!isValidOp(op))
        throw new LenscapError('ERR_CLOUD_TOPIC', `op "${op.slice(0, 40)}" cannot be a topic level`);
      return `${prefix}reply/${op}`;
    },
    owns(topic: string): boolean {
      // eslint-disable-next-line no-control-regex -- NUL is exactly what a topic must not carry
      return topic.startsWith(prefix) && topic.length > prefix.length && !/[+#\u0000]/.test(topic);
    },
  };
}

export type Incoming =
  | { kind: 'command'; op: string }
  /** Under our prefix and `cmd/`, but the op is not a valid name: refused with a reply on no topic. */
  | { kind: 'bad_op'; raw: string }
  /** Anything else: dropped and reported. */
  | { kind: 'foreign'; topic: string };

/** Classifies an incoming message's topic. Only `<prefix>cmd/<op>` is ever acted on. */
export function classifyIncoming(topics: Topics, topic: string): Incoming {
  const cmd = `${topics.prefix}cmd/`;
  if (!topic.startsWith(cmd)) return { kind: 'foreign', topic };
  const rest = topic.slice(cmd.length);
  if (rest.includes('/') && !topics.dotsSplitLevels) return { kind: 'foreign', topic };
  // Where dots split levels, `cmd/claim/nonce` is how the broker delivers `cmd/claim.nonce`: ops never
  // contain `/`, so reading the levels back as dots is exact (an empty level makes an invalid op).
  const op = topics.dotsSplitLevels ? rest.split('/').join('.') : rest;
  return isValidOp(op) ? { kind: 'command', op } : { kind: 'bad_op', raw: op };
}
