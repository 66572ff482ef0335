/**
 * A camera's owner-held trust over a real state dir with a real claim code, and the simulated
 * phones of its users (real P-256 / X25519 keys). Tests claim, sign and prove for real.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { ManualClock } from '../../agent/clock.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { silentLogger } from '../../agent/log.ts';
import { formatClaimCode } from '../../agent/owner/claim-code.ts';
import { OwnerTrust } from '../../agent/owner/owner-trust.ts';
import { writeClaimSecret } from '../../agent/owner/owner-store.ts';
import { stateLayout, type StateLayout } from '../../agent/state-layout.ts';
import {
  makeClaim,
  newPhoneKeys,
  type MemberEntry,
  type PhoneKeys,
} from '../../scripts/dev-cloud/owner-phone.ts';
import { makeTempDir } from '../../harness/tmp.ts';

export const SERIAL = 'CAM-0001';
export const NOW_MS = Date.parse('2026-11-20T00:00:00Z');

export interface OwnerFixture {
  dir: string;
  paths: StateLayout;
  code: string;
  clock: ManualClock;
  events: MemoryEventSink;
  owner: OwnerTrust;
  alice: PhoneKeys;
  bob: PhoneKeys;
  mallory: PhoneKeys;
  reload(): OwnerTrust;
  /** The whole flow: nonce from the camera, proof and membership from alice's phone. */
  claimAs(
    keys: PhoneKeys,
    opts?: { code?: string; viewers?: MemberEntry[] },
  ): ReturnType<OwnerTrust['claim']>;
  /** Every file under the state dir with its bytes: "nothing changed on disk" is equality. */
  snapshot(): Record<string, string>;
  cleanup(): void;
}

export function makeOwnerFixture(over: Record<string, unknown> = {}): OwnerFixture {
  const { dir, cleanup } = makeTempDir('lenscap-owner-');
  const paths = stateLayout(join(dir, 'state'));
  const code = formatClaimCode(randomBytes(20));
  writeClaimSecret(paths, code);
  const clock = new ManualClock(NOW_MS);
  const events = new MemoryEventSink();
  const { config } = loadConfig(undefined, {});
  const load = () =>
    OwnerTrust.load({
      serial: SERIAL,
      paths,
      clock,
      logger: silentLogger(),
      events,
      config: { ...config.owner, ...over } as typeof config.owner,
    });
  const f: OwnerFixture = {
    dir,
    paths,
    code,
    clock,
    events,
    owner: load(),
    alice: newPhoneKeys('alice'),
    bob: newPhoneKeys('bob'),
    mallory: newPhoneKeys('mallory'),
    reload: () => (f.owner = load()),
    claimAs(keys, opts = {}) {
      const { nonce } = f.owner.claimNonce();
      return f.owner.claim(
        makeClaim(keys, { code: opts.code ?? code, serial: SERIAL, nonce, viewers: opts.viewers ?? [] }),
      );
    },
    snapshot() {
      const out: Record<string, string> = {};
      const walk = (d: string) => {
        if (!existsSync(d)) return;
        for (const name of readdirSync(d)) {
          const p = join(d, name);
          if (statSync(p).isDirectory()) walk(p);
          else out[p] = readFileSync(p, 'base64');
        }
      };
      walk(paths.root);
      return out;
    },
    cleanup,
  };
  return f;
}
