/**
 * The reconnect policy: when the next connection attempt may happen, and whether to keep trying.
 * Exponential backoff with full jitter, capped before jittering (sleep = random(0, min(cap,
 * base·2^n))), a counter reset only after the link stayed up `resetAfterMs`, a random initial delay
 * after boot or a long outage, retries spread over a wider window after a lost connection, and MQTT CONNACK/DISCONNECT reason codes taken into account.
 * Pure: time and randomness come from the injected Clock/Random, so a schedule is reproducible.
 * Must never return a delay of zero for a whole fleet at once (no un-jittered retry), and must never
 * retry an authorization refusal at the normal pace.
 */
import type { Clock, Random } from '../clock.ts';
import { LenscapError } from '../errors.ts';

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  resetAfterMs: number;
  initialDelayMaxMs: number;
  longOutageMs: number;
  /**
   * After an established connection is lost, every retry until the next connection waits at least
   * random(0, this): a broker node that dies drops all its clients in the same instant, and they must
   * not land on the other nodes in the same second, nor bunch up again when a dead broker returns.
   * Never above capMs. 0: the ordinary window.
   */
  dropDelayMaxMs: number;
  /**
   * After a lost connection the window also grows with how long the link has been down: at least
   * this × the time down so far (capped). The longer an outage, the more of the fleet is waiting
   * for the same broker, so the spread widens with it. 0: off.
   */
  outageSpread?: number;
  /** Pace of retries after the broker refused our identity (not authorized / bad credentials). */
  authRetryMs: number;
  followServerReference: boolean;
}

/** How the last attempt or connection ended, as the link saw it. */
export type Outcome =
  /** TCP/TLS failure, timeout, or a connection that closed without a reason code. */
  | { kind: 'network'; error?: string }
  /** CONNACK refused the connection (MQTT 5 reason code, or 3.1.1 return code 1..5). */
  | { kind: 'connack'; protocolVersion: 4 | 5; code: number; serverReference?: string }
  /** The server sent DISCONNECT with a reason code (MQTT 5 only). */
  | { kind: 'disconnect'; code: number; serverReference?: string };

export type DelayReason =
  'initial' | 'backoff' | 'server_busy' | 'not_authorized' | 'server_reference' | 'config_refused';

export interface Decision {
  delayMs: number;
  reason: DelayReason;
  /** Attempt counter n after this decision (the window was min(cap, base·2^n) before it grew). */
  attempt: number;
  /** Set when the broker refused us for a reason that retrying soon cannot fix. */
  error?: LenscapError;
  /** Where to connect next (host[:port]) when the server pointed elsewhere and config allows it. */
  serverReference?: string;
}

/** MQTT 5 reason codes that mean "too many of you right now". */
export const BUSY_CODES: ReadonlySet<number> = new Set([0x89, 0x97, 0x9f]);
/** MQTT 5: use another server (temporary) / server moved (permanent). */
export const REFERENCE_CODES: ReadonlySet<number> = new Set([0x9c, 0x9d]);
/** MQTT 5 bad username or password, not authorized, bad authentication method, banned. */
export const AUTH_CODES_V5: ReadonlySet<number> = new Set([0x86, 0x87, 0x8c, 0x8a]);
/** MQTT 3.1.1 return codes: 4 bad user name or password, 5 not authorized. */
export const AUTH_CODES_V4: ReadonlySet<number> = new Set([4, 5]);
/** Refusals caused by our own configuration (protocol version, client id): retry slowly too. */
const CONFIG_CODES_V5: ReadonlySet<number> = new Set([0x84, 0x85]);
const CONFIG_CODES_V4: ReadonlySet<number> = new Set([1, 2]);

/** 2^n overflows to Infinity past 1023; stop growing once the window is at the cap anyway. */
const MAX_EXPONENT = 40;

/** The capped window min(cap, base·2^n) that full jitter draws from (also the upload queue's retries). */
export function cappedWindow(baseMs: number, capMs: number, n: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(n, 0), MAX_EXPONENT));
}

export class Backoff {
  private n = 0;
  private upSince: number | undefined;
  /** When the link was last seen up (or when we started): measures the outage. */
  private lastUp: number;
  private booted = false;
  /** Set when an established connection was lost; cleared by the next connection. */
  private afterDrop = false;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    if (opts.baseMs <= 0 || opts.capMs < opts.baseMs) {
      throw new LenscapError(
        'ERR_CLOUD_BACKOFF_CONFIG',
        `backoff needs 0 < base (${opts.baseMs}) <= cap (${opts.capMs})`,
      );
    }
    this.lastUp = clock.now();
  }

  /** Attempt counter (tests, telemetry). */
  get attempt(): number {
    return this.n;
  }

  /** The current window before jitter: min(cap, base·2^n). */
  window(n = this.n): number {
    return cappedWindow(this.opts.baseMs, this.opts.capMs, n);
  }

  /**
   * Delay before the very first connect after boot: random(0, initialDelayMaxMs), so a street whose
   * power comes back does not connect in the same second.
   */
  initial(): Decision {
    this.booted = true;
    this.lastUp = this.clock.now();
    return { delayMs: this.jitter(this.opts.initialDelayMaxMs), reason: 'initial', attempt: this.n };
  }

  /** The CONNACK said yes. */
  connected(): void {
    this.afterDrop = false;
    this.upSince = this.clock.now();
    this.lastUp = this.upSince;
  }

  /** Decides the delay before the next attempt after `outcome`. */
  next(outcome: Outcome): Decision {
    const now = this.clock.now();
    if (!this.booted) this.booted = true;
    if (this.upSince !== undefined) {
      this.afterDrop = true;
      // Only a connection that stayed up long enough earns a fresh start: a broker that accepts and
      // then drops at once (overloaded) must not pull the whole fleet back to 1 s.
      if (now - this.upSince >= this.opts.resetAfterMs) this.n = 0;
      this.lastUp = now;
      this.upSince = undefined;
    }
    const code = outcome.kind === 'network' ? undefined : outcome.code;
    const v4 = outcome.kind === 'connack' && outcome.protocolVersion === 4;

    if (code !== undefined && (v4 ? AUTH_CODES_V4 : AUTH_CODES_V5).has(code)) {
      this.n = this.exponentForCap();
      return {
        delayMs: this.upperHalf(Math.max(this.opts.authRetryMs, this.opts.capMs)),
        reason: 'not_authorized',
        attempt: this.n,
        error: new LenscapError(
          'ERR_CLOUD_NOT_AUTHORIZED',
          `the broker refused this camera's identity (reason code 0x${code.toString(16)}); check the device certificate and the broker ACL — retrying slowly`,
          { code },
        ),
      };
    }
    if (code !== undefined && (v4 ? CONFIG_CODES_V4 : CONFIG_CODES_V5).has(code)) {
      this.n = this.exponentForCap();
      return {
        delayMs: this.upperHalf(Math.max(this.opts.authRetryMs, this.opts.capMs)),
        reason: 'config_refused',
        attempt: this.n,
        error: new LenscapError(
          'ERR_CLOUD_REFUSED_CONFIG',
          `the broker refused the connection (reason code 0x${code.toString(16)}): protocol version or client id; check cloud.protocolVersion — retrying slowly`,
          { code },
        ),
      };
    }
    if (code !== undefined && !v4 && BUSY_CODES.has(code)) {
      // The broker says it is overloaded: go straight to the cap and stay in its upper half.
      this.n = this.exponentForCap();
      return { delayMs: this.upperHalf(this.opts.capMs), reason: 'server_busy', attempt: this.n };
    }
    if (
      code !== undefined &&
      !v4 &&
      REFERENCE_CODES.has(code) &&
      this.opts.followServerReference &&
      outcome.kind !== 'network' &&
      outcome.serverReference
    ) {
      // A redirect is not a failure of the fleet's pace; still jittered, on the first step.
      return {
        delayMs: this.jitter(this.opts.baseMs),
        reason: 'server_reference',
        attempt: this.n,
        serverReference: outcome.serverReference,
      };
    }

    let window = this.window();
    if (now - this.lastUp >= this.opts.longOutageMs) window = Math.max(window, this.opts.initialDelayMaxMs);
    if (this.afterDrop) window = Math.max(window, dropWindowMs(now - this.lastUp, this.opts));
    this.n = Math.min(this.n + 1, MAX_EXPONENT);
    return { delayMs: this.jitter(window), reason: 'backoff', attempt: this.n };
  }

  private exponentForCap(): number {
    return Math.min(MAX_EXPONENT, Math.max(this.n, Math.ceil(Math.log2(this.opts.capMs / this.opts.baseMs))));
  }

  private jitter(window: number): number {
    return Math.floor(this.random() * window);
  }

  private upperHalf(window: number): number {
    return Math.floor(window / 2 + this.random() * (window / 2));
  }
}

/**
 * The least window of a retry after a lost connection, `downForMs` after it was lost:
 * max(dropDelayMaxMs, outageSpread × downForMs), never above capMs (a test rig or a small site with
 * a short cap keeps its pace). Why it grows: when the broker comes back after an outage of T, the
 * devices' next attempts are spread over their current windows W, so the broker sees about
 * 2·devices/W connects per second at first; with W ≥ outageSpread·T a longer outage (which drops
 * more of the fleet, and for longer) gets a proportionally wider spread.
 */
export function dropWindowMs(
  downForMs: number,
  o: Pick<BackoffOptions, 'dropDelayMaxMs' | 'capMs' | 'outageSpread'>,
): number {
  const grown = Math.max(0, downForMs) * Math.max(0, o.outageSpread ?? 0);
  return Math.min(o.capMs, Math.max(o.dropDelayMaxMs, Math.round(grown)));
}
