/**
 * The one service lifecycle every long-running part of the agent speaks (cloud link, gate, stream,
 * push, telemetry, renewal, watchdog, event queue, …) and the generic runner the composition root
 * starts them with: in order, one at a time; stop is the exact reverse of start; a start that fails
 * stops what already started (in reverse) before the error reaches the caller; a service whose
 * start throws must leave nothing running behind it.
 * Must never stop a service it did not start, stop one twice, or let one failing stop skip the rest.
 */
import { describeError } from './errors.ts';
import type { Logger } from './log.ts';

/** What a service says about itself: `ok: false` withholds the systemd watchdog ping. */
export interface ServiceHealth {
  ok: boolean;
  /** Short reason for the journal (never a secret). */
  detail?: string;
}

export interface Service {
  /** Stable kebab-case name; docs/architecture.md lists them in start order. */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): ServiceHealth;
}

/** The health of every started service; ok only while all are ok. */
export interface RunnerHealth {
  ok: boolean;
  /** The services that are not ok, by name, with their detail. */
  failing: Array<{ name: string; detail?: string }>;
}

/** A healthy-while-started adapter for services with nothing more to say about themselves. */
export function service(
  name: string,
  hooks: {
    start?: () => Promise<void> | void;
    stop?: () => Promise<void> | void;
    health?: () => ServiceHealth;
  },
): Service {
  let running = false;
  return {
    name,
    async start() {
      await hooks.start?.();
      running = true;
    },
    async stop() {
      running = false;
      await hooks.stop?.();
    },
    health: () =>
      hooks.health ? hooks.health() : running ? { ok: true } : { ok: false, detail: 'not running' },
  };
}

/**
 * Starts services in the order they are handed over and remembers them; `stop()` runs the reverse.
 * The composition root hands each service over as soon as it is built, so a later service can be
 * built from an earlier one without any late reference.
 */
export class ServiceRunner {
  private readonly started: Service[] = [];
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly logger: Logger,
    /** Sees each start and stop as it happens (tests hold the documented order with it). */
    private readonly observe?: (phase: 'started' | 'stopped', name: string) => void,
  ) {}

  /** Starts `s`; on failure stops everything started before it (reverse order) and rethrows. */
  async start<S extends Service>(s: S): Promise<S> {
    if (this.stopping) throw new Error(`service runner stopped: ${s.name} not started`);
    try {
      await s.start();
    } catch (err) {
      this.logger.error(
        { code: 'SERVICE_START_FAILED', service: s.name, err: describeError(err) },
        'start failed',
      );
      // A start that throws leaves nothing behind (the contract); what started before it is stopped.
      await this.stop();
      throw err;
    }
    this.started.push(s);
    this.observe?.('started', s.name);
    this.logger.debug({ code: 'SERVICE_STARTED', service: s.name }, 'service started');
    return s;
  }

  /** Starts each in turn (see start). */
  async startAll(list: readonly Service[]): Promise<void> {
    for (const s of list) await this.start(s);
  }

  /** Names of the started services, in start order. */
  names(): string[] {
    return this.started.map((s) => s.name);
  }

  health(): RunnerHealth {
    const failing: RunnerHealth['failing'] = [];
    for (const s of this.started) {
      let h: ServiceHealth;
      try {
        h = s.health();
      } catch (err) {
        h = { ok: false, detail: `health check threw: ${describeError(err)}` };
      }
      if (!h.ok) failing.push(h.detail === undefined ? { name: s.name } : { name: s.name, detail: h.detail });
    }
    return { ok: failing.length === 0, failing };
  }

  /** Stops every started service in reverse start order; idempotent. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      for (const s of this.started.splice(0).reverse()) await this.stopOne(s);
    })());
  }

  private async stopOne(s: Service): Promise<void> {
    try {
      await s.stop();
      this.observe?.('stopped', s.name);
      this.logger.debug({ code: 'SERVICE_STOPPED', service: s.name }, 'service stopped');
    } catch (err) {
      this.observe?.('stopped', s.name);
      this.logger.warn(
        { code: 'SERVICE_STOP_FAILED', service: s.name, err: describeError(err) },
        'error while stopping',
      );
    }
  }
}
