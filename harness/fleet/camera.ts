/**
 * A "light" camera for the fleet benches: the real agent code per camera — on-disk event queue,
 * grant gate (agent/grants), viewer gate (agent/gate) and cloud link with its command dispatcher
 * (agent/cloud) — composed in one process with the capture pipeline DISABLED: the gate's stream
 * hands each tap an FLV header and one empty keyframe (`noCaptureStream`), so an accepted viewer
 * gets the gate's 200 and no picture. `stream.start`
 * is answered by a capture-disabled stand-in that asks the real grant gate (purpose `push`) and
 * never spawns ffmpeg. Must never share state between cameras (one state dir, one queue, one gate each).
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import { EventQueue } from '../../agent/audit/event-queue.ts';
import type { SecurityEvent } from '../../agent/audit/events.ts';
import { systemClock, systemRandom } from '../../agent/clock.ts';
import { CommandRegistry, commandEnvelope } from '../../agent/cloud/commands.ts';
import { createCloudLink } from '../../agent/cloud/link.ts';
import type { Config } from '../../agent/config/schema.ts';
import { LenscapError } from '../../agent/errors.ts';
import { createGate, type Gate } from '../../agent/gate/gate.ts';
import { createGrantGate, type GrantGateService } from '../../agent/grants/grant-gate.ts';
import { silentLogger } from '../../agent/log.ts';
import type { StateLayout } from '../../agent/state-layout.ts';
import type { CloudLink } from '../../agent/cloud/link.ts';
import { writeCameraState, writeIdentity, type CameraIdentity, type CameraTrust } from '../agent-runner.ts';

export interface FleetCamera {
  serial: string;
  kind: 'full' | 'light';
  gateUrl: string;
  /** Security events this camera emitted (light cameras count them; full agents report -1). */
  emitted(): number;
  /** Events still waiting in the on-disk queue (-1 when not visible). */
  queued(): number;
  stop(): Promise<void>;
}

class NoPrivacy extends EventEmitter {
  isOn() {
    return false;
  }
}

export async function startLightCamera(opts: {
  serial: string;
  root: string;
  config: Config;
  identity: CameraIdentity;
  trust: CameraTrust;
}): Promise<FleetCamera> {
  const { serial, config } = opts;
  const paths = writeCameraState(opts.root, opts.identity, opts.trust);
  const logger = silentLogger();
  const queue = EventQueue.open({
    file: paths.eventQueue,
    serial,
    maxEvents: config.cloud.eventQueue.maxEvents,
    maxBytes: config.cloud.eventQueue.maxBytes,
    clock: systemClock,
    logger,
  });
  let emitted = 0;
  // Counts at the source, so the bench can tell an event the camera never raised from one lost on the way.
  const events = {
    emit(e: SecurityEvent) {
      emitted++;
      queue.emit(e);
    },
    deliver: queue.deliver.bind(queue),
    onEnqueued: queue.onEnqueued.bind(queue),
  };
  const privacy = new NoPrivacy();
  const grants: GrantGateService = createGrantGate({
    serial,
    grants: config.grants,
    relayAllowList: config.stream.relayAllowList,
    paths,
    clock: systemClock,
    logger,
    events,
    isPrivacyOn: () => false,
  });
  // Capture disabled: a lease costs nothing and no picture is ever made.
  const gate: Gate = createGate({
    serial,
    config: { ...config.gate, host: '127.0.0.1', port: 0, tls: false },
    grants,
    stream: noCaptureStream,
    privacy,
    clock: systemClock,
    logger,
  });
  await gate.listen();
  const registry = new CommandRegistry();
  registry.register({
    op: 'stream.start',
    schema: commandEnvelope.extend({ grant: z.string().min(1).max(8192) }).strict(),
    handle: async (p) => {
      const d = await grants.decide(p.grant, { source: 'mqtt:stream.start', purpose: 'push' });
      if (!d.ok)
        throw new LenscapError('ERR_GRANT_REFUSED', `push refused: ${d.reason}`, { reason: d.reason });
      return { jti: d.claims.jti, exp: d.claims.exp, capture: 'disabled' };
    },
  });
  registry.register({
    op: 'stream.stop',
    schema: commandEnvelope.extend({ jti: z.string().min(1).max(128) }).strict(),
    handle: (p) => ({ jti: p.jti, sessions: gate.closeByJti(p.jti) }),
  });
  const link = createCloudLink({
    config,
    serial,
    paths,
    clock: systemClock,
    random: systemRandom,
    logger,
    events,
    commands: registry,
    state: () => ({ gate: gate.url }),
  });
  link.start();
  return {
    serial,
    kind: 'light',
    gateUrl: gate.url!,
    emitted: () => emitted,
    queued: () => queue.size,
    async stop() {
      await link.stop();
      await gate.close();
      grants.close();
      queue.close();
    },
  };
}

/**
 * The capture-disabled stand-in for the gate's stream: a lease costs nothing, and each tap gets an
 * FLV header and one empty keyframe tag — the gate holds an accepted viewer's response head until
 * a keyframe, so without it every accept would wait out gate.firstKeyframeTimeoutSeconds.
 */
export const noCaptureStream = {
  acquire: () => () => undefined,
  attach(sink: { write(b: Buffer): void }): () => void {
    sink.write(Buffer.from('464c5601010000000900000000', 'hex'));
    const body = Buffer.from([0x17, 0x01, 0, 0, 0]);
    const tag = Buffer.alloc(11 + body.length + 4);
    tag[0] = 9;
    tag.writeUIntBE(body.length, 1, 3);
    body.copy(tag, 11);
    tag.writeUInt32BE(11 + body.length, 11 + body.length);
    sink.write(tag);
    return () => undefined;
  },
};

/** One fleet member's cloud side: its state dir, on-disk security-event queue and cloud link. */
export interface LinkCamera {
  serial: string;
  paths: StateLayout;
  queue: EventQueue;
  link: CloudLink;
}

/**
 * A cloud link with its on-disk event queue for one serial, identity written under `root` (not
 * started: register commands, then `link.start()`). The storm and events runs build fleets of these.
 */
export function openLinkCamera(o: {
  root: string;
  serial: string;
  identity: CameraIdentity;
  config: Config;
  commands: CommandRegistry;
  random?: () => number;
}): LinkCamera {
  const paths = writeIdentity(o.root, o.identity);
  const queue = EventQueue.open({
    file: paths.eventQueue,
    serial: o.serial,
    maxEvents: 1000,
    maxBytes: 1 << 20,
    clock: systemClock,
    logger: silentLogger(),
  });
  const link = createCloudLink({
    config: o.config,
    serial: o.serial,
    paths,
    clock: systemClock,
    random: o.random ?? systemRandom,
    logger: silentLogger(),
    events: queue,
    commands: o.commands,
  });
  return { serial: o.serial, paths, queue, link };
}
