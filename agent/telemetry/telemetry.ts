/**
 * Health telemetry: every `telemetry.intervalSeconds` one sample of system figures (./probes.ts) plus
 * the agent's own counters as deltas since the previous sample, handed to `publish` (the cloud link's
 * `telemetry` topic, QoS 0: a missed sample is replaced by the next, so nothing is queued offline).
 * Must never block the event loop, never overlap two samples, and never put identities or tokens in
 * a sample.
 */
import { unrefTimer, type Time, type TimerHandle } from '../clock.ts';
import type { Logger } from '../log.ts';
import { probeSystem, type ProbeOptions, type SystemFigures } from './probes.ts';

/** Cumulative counters from the services; telemetry reports the change since the last sample. */
export interface AgentCounters {
  /** Cloud link reconnects since start. */
  reconnects: number;
  /** Grant and command refusals since start. */
  refusals: number;
  /** Viewer sessions started since start. */
  sessionsStarted?: number;
  /** Viewer sessions open now (a gauge, reported as is). */
  sessionsOpen?: number;
  /** Security events waiting in the queue (gauge). */
  eventsQueued?: number;
  /** Bytes held by the motion events' pre-roll ring (gauge; 0 while events are off). */
  motionRingBytes?: number;
}

export interface TelemetrySample extends SystemFigures {
  at: string;
  agent: {
    reconnects: number;
    refusals: number;
    sessionsStarted: number;
    sessionsOpen: number;
    eventsQueued: number;
    motionRingBytes: number;
    intervalSeconds: number;
  };
}

export interface TelemetryDeps {
  intervalSeconds: number;
  probe: ProbeOptions;
  /** Sample times and the sampling interval run on it. */
  clock: Time;
  logger: Logger;
  counters: () => AgentCounters;
  /** Sends a sample; resolves false when it could not (offline). */
  publish: (sample: TelemetrySample) => Promise<boolean>;
  /** For tests: replaces the system probes. */
  probeSystem?: (opts: ProbeOptions) => Promise<SystemFigures>;
}

export interface Telemetry {
  start(): void;
  stop(): void;
  /** Samples now and publishes (the `telemetry` command); resolves with what was sent. */
  sendNow(): Promise<{ sent: boolean; sample: TelemetrySample }>;
  /** One sample without publishing; deltas are not consumed. */
  sample(): Promise<TelemetrySample>;
}

export function createTelemetry(deps: TelemetryDeps): Telemetry {
  const log = deps.logger.child({ component: 'telemetry' });
  const probe = deps.probeSystem ?? probeSystem;
  let last: AgentCounters = { reconnects: 0, refusals: 0, sessionsStarted: 0 };
  let timer: TimerHandle | undefined;
  let running: Promise<{ sent: boolean; sample: TelemetrySample }> | undefined;

  const build = async (consume: boolean): Promise<TelemetrySample> => {
    const sys = await probe(deps.probe);
    const now = deps.counters();
    const sample: TelemetrySample = {
      at: new Date(deps.clock.now()).toISOString(),
      ...sys,
      agent: {
        reconnects: Math.max(0, now.reconnects - last.reconnects),
        refusals: Math.max(0, now.refusals - last.refusals),
        sessionsStarted: Math.max(0, (now.sessionsStarted ?? 0) - (last.sessionsStarted ?? 0)),
        sessionsOpen: now.sessionsOpen ?? 0,
        eventsQueued: now.eventsQueued ?? 0,
        motionRingBytes: now.motionRingBytes ?? 0,
        intervalSeconds: deps.intervalSeconds,
      },
    };
    if (consume) last = { ...now };
    return sample;
  };

  const sendNow = () => {
    // A sample already under way answers this call too: never two probes at once.
    running ??= (async () => {
      try {
        const sample = await build(true);
        const sent = await deps.publish(sample);
        log.debug({ sent, costMs: sample.costMs }, 'telemetry sample');
        return { sent, sample };
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  return {
    start() {
      if (timer) return;
      // The CPU share is measured since the previous reading: take the first one now, so the
      // first sample covers its own interval, not the time since boot.
      if (!deps.probeSystem) void probe(deps.probe).catch(() => undefined);
      timer = deps.clock.setInterval(() => {
        sendNow().catch((err) => log.warn({ err: (err as Error).message }, 'telemetry sample failed'));
      }, deps.intervalSeconds * 1000);
      unrefTimer(timer);
    },
    stop() {
      if (timer !== undefined) deps.clock.clearInterval(timer);
      timer = undefined;
    },
    sendNow,
    sample: () => build(false),
  };
}
