/**
 * The camera's current trust: the pinned root, the installed trust bundle (issuer and binding
 * keys) and the binding record. Loads them from the state dir at start; accepts newer signed
 * versions from the cloud (`cmd/trust`, `cmd/binding`) and installs them atomically.
 * The highest version of each ever installed is kept on disk (storage/version-floors.ts), so a
 * restart cannot be used to go back either.
 * Must never install anything that did not verify, nor go back to an older version.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import type { EventSink } from '../audit/events.ts';
import type { Clock } from '../clock.ts';
import { isLenscapError, LenscapError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import { VersionFloors } from '../storage/version-floors.ts';
import { isBoundViewer, verifyBindingRecord, type BindingRecord } from './binding.ts';
import type { VerificationKey } from './jws.ts';
import { verifyTrustBundle, type TrustBundle } from './trust-bundle.ts';
import { checkAgainstPins, loadPins, type Pins } from '../identity/pins.ts';

/** Document kinds in the version floor file (storage/version-floors.ts). */
export const TRUST_BUNDLE_KIND = 'trust_bundle';
export const BINDING_KIND = 'binding';

export interface TrustStoreDeps {
  /**
   * The firmware image's pins (identity/pins.ts); default: read from the image's certs/. With a
   * pinned trust root, the root in the state dir must be that key, or the agent does not start.
   */
  pins?: Pins | null;
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

  private constructor(
    private readonly deps: TrustStoreDeps,
    /**
     * Highest versions ever installed, on disk. The binding floor outlives a key rotation that
     * un-verifies the record and a restart: the next record must still be newer.
     */
    private readonly floors: VersionFloors,
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
    // A pinned image trusts no other root, whatever the state dir holds.
    checkAgainstPins(deps.pins === undefined ? loadPins() : (deps.pins ?? undefined), {
      trustRootJwk: rootJwk,
    });
    const floors = VersionFloors.open(paths.versionFloors);
    const bundle = verifyTrustBundle(
      readText(paths.trustBundle, 'ERR_TRUST_BUNDLE_MISSING', 'trust bundle'),
      rootJwk,
    );
    const bundleFloor = floors.get(TRUST_BUNDLE_KIND);
    if (bundleFloor !== undefined && bundle.version < bundleFloor) {
      // The file was swapped for an older bundle while the agent was down: it may list a retired key.
      throw new LenscapError(
        'ERR_TRUST_BUNDLE_ROLLBACK',
        `installed trust bundle version ${bundle.version} is older than version ${bundleFloor} installed before; refusing to start`,
        { path: paths.trustBundle },
      );
    }
    // An agent that predates the floor file (or crashed between the two writes) catches up here.
    floors.raise(TRUST_BUNDLE_KIND, bundle.version);
    let binding: BindingRecord | undefined;
    if (existsSync(paths.binding)) {
      try {
        binding = verifyBindingRecord(readFileSync(paths.binding, 'utf8'), {
          serial,
          bindingKeys: bundle.bindingKeys,
        });
        const floor = floors.get(BINDING_KIND);
        if (floor !== undefined && binding.version < floor) {
          const version = binding.version;
          binding = undefined;
          throw new LenscapError(
            'ERR_BINDING_ROLLBACK',
            `installed binding record version ${version} is older than version ${floor} installed before`,
          );
        }
        floors.raise(BINDING_KIND, binding.version);
      } catch (err) {
        if (isLenscapError(err, 'ERR_BINDING_ROLLBACK')) {
          deps.events.emit({
            type: 'command_refused',
            at: new Date(deps.clock.now()).toISOString(),
            serial,
            reason: err.code,
            source: 'state:binding',
            data: { floor: floors.get(BINDING_KIND) },
          });
        }
        // Fail closed but keep running: an unverifiable binding means "not claimed" until the cloud sends a good one.
        logger.error(
          { code: (err as LenscapError).code, reason: 'not_claimed' },
          `installed binding record does not verify; camera treated as unclaimed: ${(err as Error).message}`,
        );
      }
    }
    logger.info({ trustVersion: bundle.version, bindingVersion: binding?.version ?? null }, 'trust loaded');
    return new TrustStore(deps, floors, rootJwk, bundle, binding);
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
    const next = verifyTrustBundle(jws, this.rootJwk, {
      minVersion: Math.max(this.bundle.version, this.floors.get(TRUST_BUNDLE_KIND) ?? 0),
    });
    mkdirSync(this.deps.paths.trustDir, { recursive: true, mode: 0o700 });
    // Document first, floor second: a crash in between leaves a newer document than its floor, which
    // load() raises the floor to; the other order would make the good document look like a rollback.
    writeFileAtomic(this.deps.paths.trustBundle, jws.trim(), 0o644);
    this.floors.raise(TRUST_BUNDLE_KIND, next.version);
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
      minVersion: Math.max(this.binding?.version ?? 0, this.floors.get(BINDING_KIND) ?? 0) || undefined,
    });
    mkdirSync(this.deps.paths.trustDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.deps.paths.binding, jws.trim(), 0o644);
    this.floors.raise(BINDING_KIND, record.version);
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

  /**
   * Local factory reset: the cloud's binding record goes too (the camera is unclaimed). Its floor
   * stays, so the cloud cannot re-install a record older than the one reset away.
   */
  clearBinding(): void {
    try {
      unlinkSync(this.deps.paths.binding);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.binding = undefined;
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
      // The floor (on disk since install) stays: the next record must still be newer.
      this.binding = undefined;
      this.deps.logger.warn(
        { reason: 'not_claimed', code: (err as LenscapError).code },
        'binding record no longer verifies after key rotation; camera unclaimed until the cloud re-sends it',
      );
    }
  }
}

function readText(path: string, code: ErrorCode, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new LenscapError(
      code,
      `${what} missing or unreadable at ${path} (${(err as NodeJS.ErrnoException).code}); provision the camera first`,
    );
  }
}

function readJson(path: string, code: ErrorCode, what: string): unknown {
  const text = readText(path, code, what);
  try {
    return JSON.parse(text);
  } catch {
    throw new LenscapError('ERR_TRUST_ROOT_INVALID', `${what} at ${path} is not JSON`);
  }
}
