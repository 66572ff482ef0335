/**
 * The camera's current trust: the pinned root, the installed trust bundle (issuer and binding
 * keys) and the binding record. Loads them from the state dir at start; accepts newer signed
 * versions from the cloud (`cmd/trust`, `cmd/binding`) and installs them atomically.
 * Must never install anything that did not verify, nor go back to an older version.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import type { EventSink } from '../audit/events.ts';
import type { Clock } from '../clock.ts';
import { LenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import { isBoundViewer, verifyBindingRecord, type BindingRecord } from './binding.ts';
import type { VerificationKey } from './jws.ts';
import { verifyTrustBundle, type TrustBundle } from './trust-bundle.ts';

export interface TrustStoreDeps {
  serial: string;
  paths: StateLayout;
  clock: Clock;
  logger: Logger;
  events: EventSink;
}

export class TrustStore {
  private rootJwk: unknown;
  private bundle: TrustBundle;
  private binding: BindingRecord | undefined;
  /**
   * Highest binding version this process has installed, kept when a key rotation un-verifies the
   * record: the next record must still be newer, so the gap cannot be used to roll back.
   */
  private bindingFloor: number | undefined;

  private constructor(
    private readonly deps: TrustStoreDeps,
    rootJwk: unknown,
    bundle: TrustBundle,
    binding: BindingRecord | undefined,
  ) {
    this.rootJwk = rootJwk;
    this.bundle = bundle;
    this.binding = binding;
  }

  /** Loads and verifies everything; a missing or invalid root or bundle stops the agent. */
  static load(deps: TrustStoreDeps): TrustStore {
    const { paths, logger, serial } = deps;
    const rootJwk = readJson(paths.trustRoot, 'ERR_TRUST_ROOT_MISSING', 'trust root');
    const bundle = verifyTrustBundle(
      readText(paths.trustBundle, 'ERR_TRUST_BUNDLE_MISSING', 'trust bundle'),
      rootJwk,
    );
    let binding: BindingRecord | undefined;
    if (existsSync(paths.binding)) {
      try {
        binding = verifyBindingRecord(readFileSync(paths.binding, 'utf8'), {
          serial,
          bindingKeys: bundle.bindingKeys,
        });
      } catch (err) {
        // Fail closed but keep running: an unverifiable binding means "not claimed" until the cloud sends a good one.
        logger.error(
          { code: (err as LenscapError).code, reason: 'not_claimed' },
          `installed binding record does not verify; camera treated as unclaimed: ${(err as Error).message}`,
        );
      }
    }
    logger.info({ trustVersion: bundle.version, bindingVersion: binding?.version ?? null }, 'trust loaded');
    return new TrustStore(deps, rootJwk, bundle, binding);
  }

  get issuerKeys(): ReadonlyMap<string, VerificationKey> {
    return this.bundle.issuerKeys;
  }
  get trustVersion(): number {
    return this.bundle.version;
  }
  get bindingRecord(): BindingRecord | undefined {
    return this.binding;
  }

  isClaimed(): boolean {
    return this.binding !== undefined;
  }

  isBound(sub: string): boolean {
    return this.binding !== undefined && isBoundViewer(this.binding, sub);
  }

  /** Installs a newer trust bundle (key rotation). Throws a coded error when refused. */
  acceptTrustBundle(jws: string, source = 'mqtt:trust'): { version: number } {
    const next = verifyTrustBundle(jws, this.rootJwk, { minVersion: this.bundle.version });
    mkdirSync(this.deps.paths.trustDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.deps.paths.trustBundle, jws.trim(), 0o644);
    const previous = this.bundle.version;
    this.bundle = next;
    if (this.binding) this.recheckBinding();
    this.deps.logger.info({ trustVersion: next.version, previous, source }, 'trust bundle rotated');
    this.deps.events.emit({
      type: 'trust_updated',
      at: new Date(this.deps.clock.now()).toISOString(),
      serial: this.deps.serial,
      source,
      data: { version: next.version, previous },
    });
    return { version: next.version };
  }

  /** Installs a newer binding record (claim, viewer added or removed, owner change). */
  acceptBinding(jws: string, source = 'mqtt:binding'): { version: number; owner: string; viewers: number } {
    const record = verifyBindingRecord(jws, {
      serial: this.deps.serial,
      bindingKeys: this.bundle.bindingKeys,
      minVersion: this.binding?.version ?? this.bindingFloor,
    });
    mkdirSync(this.deps.paths.trustDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.deps.paths.binding, jws.trim(), 0o644);
    const previous = this.binding?.version ?? null;
    this.binding = record;
    this.deps.logger.info({ bindingVersion: record.version, previous, source }, 'binding record installed');
    this.deps.events.emit({
      type: 'binding_changed',
      at: new Date(this.deps.clock.now()).toISOString(),
      serial: this.deps.serial,
      source,
      data: { version: record.version, previous, viewers: record.viewers.length + 1 },
    });
    return { version: record.version, owner: record.owner, viewers: record.viewers.length };
  }

  /** After a rotation the binding must still verify under the new binding keys, else: unclaimed. */
  private recheckBinding(): void {
    const raw = readFileSync(this.deps.paths.binding, 'utf8');
    try {
      this.binding = verifyBindingRecord(raw, {
        serial: this.deps.serial,
        bindingKeys: this.bundle.bindingKeys,
      });
    } catch (err) {
      this.bindingFloor = Math.max(this.bindingFloor ?? 0, this.binding?.version ?? 0);
      this.binding = undefined;
      this.deps.logger.warn(
        { reason: 'not_claimed', code: (err as LenscapError).code },
        'binding record no longer verifies after key rotation; camera unclaimed until the cloud re-sends it',
      );
    }
  }
}

function readText(path: string, code: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new LenscapError(
      code,
      `${what} missing or unreadable at ${path} (${(err as NodeJS.ErrnoException).code}); provision the camera first`,
    );
  }
}

function readJson(path: string, code: string, what: string): unknown {
  const text = readText(path, code, what);
  try {
    return JSON.parse(text);
  } catch {
    throw new LenscapError('ERR_TRUST_ROOT_INVALID', `${what} at ${path} is not JSON`);
  }
}
