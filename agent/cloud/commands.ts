/**
 * Cloud commands: a registry where services register ops (each with a zod schema), and the
 * dispatcher that turns one `cmd/<op>` payload into exactly one reply. Every payload is size-checked,
 * parsed and validated before a handler sees it; ids are de-duplicated so a QoS 1 redelivery does not
 * act twice (it gets the first reply again), and an id reused for another op is refused
 * (`ERR_COMMAND_ID_REUSED`): answering it with the other op's reply would say "ok" for something that
 * never ran. Must never let a malformed payload reach a handler,
 * never crash on input, and never put a payload (it may hold a signed record) whole in a log line.
 */
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { LenscapError, isLenscapError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { EventSink } from '../audit/events.ts';
import { duplicateKey } from '../strict-json.ts';
import { isValidOp } from './topics.ts';

export interface CommandReply {
  /** The command's id; null when the payload was refused before an id could be read. */
  id: string | null;
  status: 'ok' | 'error';
  data?: unknown;
  error?: { code: string; message: string };
}

export interface CommandContext {
  id: string;
  op: string;
  serial: string;
}

/** Fields every command carries. Handlers' schemas extend this. */
export const commandEnvelope = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only'),
});

export interface CommandDefinition<S extends z.ZodType = z.ZodType> {
  op: string;
  /** Validates the whole payload (include `id`, e.g. `commandEnvelope.extend({...})`). */
  schema: S;
  /** What the cloud sees as `data`. Throw a LenscapError to reply with its code. */
  handle(payload: z.infer<S>, ctx: CommandContext): unknown | Promise<unknown>;
}

export class CommandRegistry {
  private readonly defs = new Map<string, CommandDefinition>();

  register<S extends z.ZodType>(def: CommandDefinition<S>): void {
    if (!isValidOp(def.op))
      throw new LenscapError('ERR_COMMAND_OP_NAME', `"${def.op}" is not a valid op name`);
    if (this.defs.has(def.op))
      throw new LenscapError('ERR_COMMAND_DUPLICATE_OP', `op "${def.op}" is already registered`);
    this.defs.set(def.op, def as unknown as CommandDefinition);
  }

  get(op: string): CommandDefinition | undefined {
    return this.defs.get(op);
  }

  ops(): string[] {
    return [...this.defs.keys()].sort();
  }
}

export interface DispatcherDeps {
  registry: CommandRegistry;
  serial: string;
  maxBytes: number;
  logger: Logger;
  events: EventSink;
  clock: Clock;
  /** How many recent command ids (and their replies) to remember. */
  dedupeSize?: number;
}

export interface CommandCounters {
  handled: number;
  refused: number;
  duplicates: number;
}

export interface CommandDispatcher {
  /** One payload in, one reply out (undefined: a duplicate still in progress, nothing to send). */
  dispatch(op: string, payload: Buffer): Promise<CommandReply | undefined>;
  /** A message arrived on a topic we never act on: logged and reported, no reply. */
  refuseTopic(topic: string, why: 'foreign_topic' | 'bad_op'): void;
  counters(): CommandCounters;
}

function idOf(value: unknown): string | null {
  const r = commandEnvelope.safeParse(value);
  return r.success ? r.data.id : null;
}

/** First zod issue as a short, payload-free message. */
function describeIssues(err: z.ZodError): string {
  const first = err.issues[0];
  if (!first) return 'invalid payload';
  const path = first.path.length ? first.path.join('.') : '(payload)';
  return `${path}: ${first.message}`.slice(0, 200);
}

export function createCommandDispatcher(deps: DispatcherDeps): CommandDispatcher {
  const { registry, logger: log } = deps;
  const dedupeSize = deps.dedupeSize ?? 1000;
  // id -> the op it was first used for and its reply (undefined while the handler runs). Map keeps
  // insertion order: oldest evicted first.
  const seen = new Map<string, { op: string; reply: CommandReply | undefined }>();
  const counters: CommandCounters = { handled: 0, refused: 0, duplicates: 0 };

  const refuse = (op: string, id: string | null, code: ErrorCode, message: string): CommandReply => {
    counters.refused++;
    log.warn({ op, id, code }, `command refused: ${message}`);
    deps.events.emit({
      type: 'command_refused',
      at: new Date(deps.clock.now()).toISOString(),
      serial: deps.serial,
      reason: code,
      source: `mqtt:${op}`,
      ...(id ? { data: { id } } : {}),
    });
    return { id, status: 'error', error: { code, message } };
  };

  const remember = (op: string, id: string, reply: CommandReply | undefined) => {
    seen.delete(id);
    seen.set(id, { op, reply });
    while (seen.size > dedupeSize) {
      const oldest = seen.keys().next().value as string;
      seen.delete(oldest);
    }
  };

  return {
    counters: () => ({ ...counters }),

    refuseTopic(topic, why) {
      counters.refused++;
      log.warn(
        {
          topic: topic.slice(0, 160),
          code: why === 'bad_op' ? 'ERR_COMMAND_BAD_OP' : 'ERR_COMMAND_FOREIGN_TOPIC',
        },
        'message dropped: not a command topic of this camera',
      );
      deps.events.emit({
        type: 'command_refused',
        at: new Date(deps.clock.now()).toISOString(),
        serial: deps.serial,
        reason: why === 'bad_op' ? 'ERR_COMMAND_BAD_OP' : 'ERR_COMMAND_FOREIGN_TOPIC',
        source: 'mqtt:?',
        data: { topic: topic.slice(0, 160) },
      });
    },

    async dispatch(op, payload) {
      // Size first: nothing of an oversize payload is parsed.
      if (payload.length > deps.maxBytes) {
        return refuse(
          op,
          null,
          'ERR_COMMAND_TOO_LARGE',
          `payload of ${payload.length} bytes exceeds ${deps.maxBytes}`,
        );
      }
      let body: unknown;
      const text = payload.toString('utf8');
      try {
        body = JSON.parse(text);
      } catch {
        return refuse(op, null, 'ERR_COMMAND_BAD_JSON', 'payload is not JSON');
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return refuse(op, null, 'ERR_COMMAND_BAD_JSON', 'payload is not a JSON object');
      }
      // The last of two equal keys would win here; the cloud may have meant the first.
      const dup = duplicateKey(text);
      if (dup !== undefined) {
        return refuse(
          op,
          null,
          'ERR_COMMAND_BAD_JSON',
          `payload has the key ${JSON.stringify(dup.slice(0, 40))} twice`,
        );
      }
      const id = idOf(body);
      if (id === null) return refuse(op, null, 'ERR_COMMAND_INVALID', 'id: a string id is required');

      const before = seen.get(id);
      if (before && before.op !== op) {
        // Not remembered: the id stays bound to its first op, whose redelivery still gets its reply.
        return refuse(
          op,
          id,
          'ERR_COMMAND_ID_REUSED',
          `id was already used for op "${before.op}"; use a new id for each command`,
        );
      }
      if (before) {
        counters.duplicates++;
        log.info({ op, id }, 'command id seen before: not acting again');
        return before.reply;
      }
      const def = registry.get(op);
      if (!def) {
        const reply = refuse(op, id, 'ERR_COMMAND_UNKNOWN_OP', `unknown op "${op}"`);
        remember(op, id, reply);
        return reply;
      }
      const parsed = def.schema.safeParse(body);
      if (!parsed.success) {
        const reply = refuse(op, id, 'ERR_COMMAND_INVALID', describeIssues(parsed.error));
        remember(op, id, reply);
        return reply;
      }
      remember(op, id, undefined);
      let reply: CommandReply;
      try {
        const data = await def.handle(parsed.data, { id, op, serial: deps.serial });
        counters.handled++;
        log.info({ op, id }, 'command done');
        reply = data === undefined ? { id, status: 'ok' } : { id, status: 'ok', data };
      } catch (err) {
        const code = isLenscapError(err) ? err.code : 'ERR_COMMAND_FAILED';
        const message = isLenscapError(err) ? err.message : 'the command failed on the camera';
        if (!isLenscapError(err))
          log.error({ op, id, err: (err as Error)?.message }, 'command handler threw');
        reply = refuse(op, id, code, message);
      }
      remember(op, id, reply);
      return reply;
    },
  };
}
