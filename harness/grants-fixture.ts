/**
 * A camera's grant gate over a real state dir, trusting a real dev-cloud key set made at run time.
 * Tests mint real signed grants with `mint(...)` and get real decisions.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createGrantGate, type GrantGateService } from '../agent/grants/grant-gate.ts';
import { ManualClock } from '../agent/clock.ts';
import { MemoryEventSink, type EventSink } from '../agent/audit/events.ts';
import { loadConfig } from '../agent/config/load.ts';
import { silentLogger, type Logger } from '../agent/log.ts';
import { stateLayout, type StateLayout } from '../agent/state-layout.ts';
import { loadOrCreateSigningKeys, type DevSigningKeys } from '../scripts/dev-cloud/signing-keys.ts';
import { mintGrant, signBindingRecord, type GrantRequest } from '../scripts/dev-cloud/mint.ts';
import { makeTempDir } from './tmp.ts';
import { randomBytes } from 'node:crypto';
import { OwnerTrust } from '../agent/owner/owner-trust.ts';
import { formatClaimCode } from '../agent/owner/claim-code.ts';
import { writeClaimSecret } from '../agent/owner/owner-store.ts';

export const SERIAL = 'CAM-0001';
export const OWNER = 'alice';
/** 2026-11-20T00:00:00Z: after the build time, so the clock is trusted. */
export const NOW_MS = Date.parse('2026-11-20T00:00:00Z');

export interface GrantFixture {
  /** Owner-held trust over the same state dir (with a claim code) when asked for. */
  owner?: OwnerTrust;
  /** The label's claim code when `owner` is set. */
  code?: string;
  dir: string;
  paths: StateLayout;
  keys: DevSigningKeys;
  gate: GrantGateService;
  clock: ManualClock;
  events: MemoryEventSink;
  privacy: { on: boolean };
  mint(req?: Partial<GrantRequest>): string;
  cleanup(): void;
}

export async function makeGrantFixture(
  opts: {
    claimed?: boolean;
    viewers?: string[];
    devDir?: string;
    grants?: Record<string, unknown>;
    /** The gate's logger (default silent). */
    logger?: Logger;
    /** Also receives every event (e.g. a real on-disk EventQueue). */
    alsoEmit?: EventSink;
    /** Build owner-held trust (agent/owner) with a fresh claim code, unclaimed. */
    ownerHeld?: boolean;
  } = {},
): Promise<GrantFixture> {
  const { dir, cleanup } = makeTempDir('lenscap-grants-');
  const keys = await loadOrCreateSigningKeys(opts.devDir ?? `${dir}/dev`);
  const paths = stateLayout(`${dir}/state`);
  mkdirSync(paths.trustDir, { recursive: true, mode: 0o700 });
  writeFileSync(paths.trustRoot, JSON.stringify(keys.trustRootJwk));
  writeFileSync(paths.trustBundle, keys.trustBundle);
  if (opts.claimed !== false)
    writeFileSync(
      paths.binding,
      signBindingRecord(keys.binding, {
        serial: SERIAL,
        owner: OWNER,
        viewers: opts.viewers ?? ['bob'],
        version: 1,
      }),
    );
  const clock = new ManualClock(NOW_MS);
  const events = new MemoryEventSink();
  if (opts.alsoEmit) {
    const tee = opts.alsoEmit;
    const own = events.emit.bind(events);
    events.emit = (e) => {
      own(e);
      tee.emit(e);
    };
  }
  const privacy = { on: false };
  const { config } = loadConfig(undefined, {});
  let owner: OwnerTrust | undefined;
  let code: string | undefined;
  if (opts.ownerHeld) {
    code = formatClaimCode(randomBytes(20));
    writeClaimSecret(paths, code);
    owner = OwnerTrust.load({
      serial: SERIAL,
      paths,
      clock,
      logger: silentLogger(),
      events,
      config: config.owner,
    });
  }
  const gate = createGrantGate({
    ...(owner ? { owner } : {}),
    serial: SERIAL,
    grants: { ...config.grants, ...(opts.grants ?? {}) } as typeof config.grants,
    relayAllowList: [],
    paths,
    clock,
    logger: opts.logger ?? silentLogger(),
    events,
    isPrivacyOn: () => privacy.on,
  });
  const mint = (req: Partial<GrantRequest> = {}) =>
    mintGrant(keys.issuer, { serial: SERIAL, viewer: OWNER, now: clock.now() / 1000, ...req }).token;
  return {
    ...(owner ? { owner, code } : {}),
    dir,
    paths,
    keys,
    gate,
    clock,
    events,
    privacy,
    mint,
    cleanup: () => {
      gate.close();
      cleanup();
    },
  };
}
