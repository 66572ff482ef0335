/**
 * The topic tree of one camera: everything lives under `lenscap/v1/<serial>/`. Builds the topics
 * the link may use and classifies incoming ones. Must never build or accept a topic outside this
 * camera's own prefix, and must never let a serial or op carry MQTT wildcards or separators.
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

export interface Topics {
  prefix: string;
  /** Retained `{"online":true,...}`; the last will sets `{"online":false}`. */
  state: string;
  telemetry: string;
  /** Security events, QoS 1. */
  events: string;
  /** Metadata of uploaded event artifacts (snapshots, clips), QoS 1. */
  motion: string;
  /** A request of the camera's own to the cloud (`req/<op>`); the answer comes as the command `<op>`. */
  request(op: string): string;
  /** The one subscription: `cmd/+`. */
  commandFilter: string;
  reply(op: string): string;
  /** Whether `topic` is a concrete topic this camera may publish to. */
  owns(topic: string): boolean;
}

export function topicsFor(serial: string): Topics {
  if (!isSafeSerial(serial))
    throw new LenscapError('ERR_CLOUD_SERIAL', `serial "${serial}" cannot be a topic level`);
  const prefix = `${TOPIC_ROOT}/${serial}/`;
  return {
    prefix,
    state: `${prefix}state`,
    telemetry: `${prefix}telemetry`,
    events: `${prefix}events`,
    motion: `${prefix}motion`,
    request(op: string): string {
      if (!isValidOp(op))
        throw new LenscapError('ERR_CLOUD_TOPIC', `op "${op.slice(0, 40)}" cannot be a topic level`);
      return `${prefix}req/${op}`;
    },
    commandFilter: `${prefix}cmd/+`,
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
  const op = topic.slice(cmd.length);
  if (op.includes('/')) return { kind: 'foreign', topic };
  return isValidOp(op) ? { kind: 'command', op } : { kind: 'bad_op', raw: op };
}
