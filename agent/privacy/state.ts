/**
 * The one privacy state the gate, the grants and the pipeline share. Three inputs: config (the
 * starting value), the cloud (`cmd/privacy`, a setter) and the hardware switch. The switch wins:
 * while it is on, the cloud cannot turn privacy off. Emits `change` with the effective value and
 * a `privacy_changed` security event. Never reports "off" while any input says on.
 */
import { EventEmitter } from 'node:events';
import type { PrivacySwitch } from '../../drivers/privacy/types.ts';
import type { EventSink } from '../audit/events.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';

/** What the gate, the stream and the event side read of privacy: its value and its changes. */
export interface PrivacySource {
  isOn(): boolean;
  on(ev: 'change', fn: (on: boolean) => void): unknown;
  off(ev: 'change', fn: (on: boolean) => void): unknown;
}

export interface PrivacyDeps {
  initial: boolean;
  hardware: PrivacySwitch;
  serial: string;
  clock: Clock;
  logger: Logger;
  events?: EventSink;
}

export interface PrivacySetResult {
  /** The effective state after the call. */
  enabled: boolean;
  /** True when the cloud asked for off but the hardware switch holds privacy on. */
  heldBySwitch: boolean;
}

export class PrivacyState extends EventEmitter {
  private cloud: boolean;
  private hw: boolean;
  private unwatch: (() => void) | undefined;

  constructor(private readonly deps: PrivacyDeps) {
    super();
    this.cloud = deps.initial;
    this.hw = deps.hardware.read();
  }

  /** Starts watching the switch. */
  start(): void {
    this.unwatch ??= this.deps.hardware.watch((on) => this.update(() => (this.hw = on), 'switch'));
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  isOn = (): boolean => this.cloud || this.hw;

  get switchOn(): boolean {
    return this.hw;
  }

  /** The cloud's (or CLI's) wish. */
  set(enabled: boolean, by = 'cloud'): PrivacySetResult {
    this.update(() => (this.cloud = enabled), by);
    return { enabled: this.isOn(), heldBySwitch: !enabled && this.hw };
  }

  private update(mutate: () => void, by: string): void {
    const before = this.isOn();
    mutate();
    const after = this.isOn();
    if (before === after) return;
    this.deps.logger.warn({ privacy: after, by, switch: this.hw }, `privacy ${after ? 'ON' : 'off'}`);
    this.deps.events?.emit({
      type: 'privacy_changed',
      at: new Date(this.deps.clock.now()).toISOString(),
      serial: this.deps.serial,
      data: { enabled: after, by, switch: this.hw },
    });
    this.emit('change', after);
  }
}

export function createPrivacyState(deps: PrivacyDeps): PrivacyState {
  return new PrivacyState(deps);
}
