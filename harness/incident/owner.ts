/**
 * The owner-held phase of the incident replay (issue 14): per camera, the real claim with its label
 * code, an owner (alice) and a viewer (bob) in the owner-signed membership; then a confused cloud
 * that (a) signs memberships and binding records naming mallory for a share of the cameras and
 * (b) hands grants minted for one user to another user's session. Every document and grant goes
 * through the agent's own OwnerTrust and GrantGateService over a real state dir (real signatures,
 * real DPoP proofs); counts what was tried and what was accepted (goal 0), and whether every
 * refusal came out as a security event.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { MemoryEventSink } from '../../agent/audit/events.ts';
import { ManualClock } from '../../agent/clock.ts';
import { loadConfig } from '../../agent/config/load.ts';
import { signCompact } from '../../agent/grants/jws.ts';
import { createGrantGate } from '../../agent/grants/grant-gate.ts';
import { silentLogger } from '../../agent/log.ts';
import { formatClaimCode } from '../../agent/owner/claim-code.ts';
import { MEMBERSHIP_TYP } from '../../agent/owner/membership.ts';
import { OwnerTrust } from '../../agent/owner/owner-trust.ts';
import { writeClaimSecret } from '../../agent/owner/owner-store.ts';
import { guardLegacyBinding } from '../../agent/cloud/owner-commands.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { loadOrCreateSigningKeys } from '../../scripts/dev-cloud/signing-keys.ts';
import { mintGrant, signBindingRecord } from '../../scripts/dev-cloud/mint.ts';
import {
  makeClaim,
  makeDpopProof,
  memberOf,
  newPhoneKeys,
  signMembership,
} from '../../scripts/dev-cloud/owner-phone.ts';

export interface OwnerIncident {
  cameras: number;
  forgedMembershipsTried: number;
  forgedMembershipsAccepted: number;
  misdeliveredGrantsTried: number;
  misdeliveredGrantsAccepted: number;
  /** Grants to the right member with the right proof: must all play (> 0). */
  boundGrantsAccepted: number;
  /** Refusals without their security event (goal 0). */
  ownerEventsLost: number;
}

export async function runOwnerHeldIncident(o: { cameras: number; share: number }): Promise<OwnerIncident> {
  const dir = mkdtempSync(join(tmpdir(), 'lenscap-incident-owner-'));
  const r: OwnerIncident = {
    cameras: o.cameras,
    forgedMembershipsTried: 0,
    forgedMembershipsAccepted: 0,
    misdeliveredGrantsTried: 0,
    misdeliveredGrantsAccepted: 0,
    boundGrantsAccepted: 0,
    ownerEventsLost: 0,
  };
  try {
    const keys = await loadOrCreateSigningKeys(join(dir, 'dev'));
    const { config } = loadConfig(undefined, {});
    const clock = new ManualClock(Date.now());
    const alice = newPhoneKeys('alice');
    const bob = newPhoneKeys('bob');
    const mallory = newPhoneKeys('mallory');
    const every = Math.max(1, Math.round(1 / Math.max(o.share, 1e-6)));
    for (let i = 0; i < o.cameras; i++) {
      const serial = `CAM-OWN-${String(i).padStart(4, '0')}`;
      const paths = stateLayout(join(dir, serial));
      mkdirSync(paths.trustDir, { recursive: true, mode: 0o700 });
      writeFileSync(paths.trustRoot, JSON.stringify(keys.trustRootJwk));
      writeFileSync(paths.trustBundle, keys.trustBundle);
      // Claimed the old way first, with mallory among the cloud's viewers.
      writeFileSync(
        paths.binding,
        signBindingRecord(keys.binding, { serial, owner: 'alice', viewers: ['mallory'], version: 1 }),
      );
      const code = formatClaimCode(randomBytes(20));
      writeClaimSecret(paths, code);
      const events = new MemoryEventSink();
      const owner = OwnerTrust.load({
        serial,
        paths,
        clock,
        logger: silentLogger(),
        events,
        config: config.owner,
      });
      const gate = createGrantGate({
        serial,
        grants: config.grants,
        relayAllowList: [],
        paths,
        clock,
        logger: silentLogger(),
        events,
        isPrivacyOn: () => false,
        owner,
      });
      const { nonce } = owner.claimNonce();
      owner.claim(makeClaim(alice, { code, serial, nonce, viewers: [memberOf(bob, 'viewer')] }));
      const epoch = owner.current()!.epoch;
      const htu = `https://127.0.0.1:8443/live/${serial}.flv`;
      const present = async (holder: typeof alice, sub: string, jktOf: typeof alice | undefined) => {
        const { token } = mintGrant(keys.issuer, {
          serial,
          viewer: sub,
          now: clock.now() / 1000,
          ...(jktOf ? { jkt: jktOf.jkt } : {}),
        });
        return gate.decide(token, {
          source: 'bench',
          purpose: 'view',
          proof: {
            dpop: makeDpopProof(holder, { htm: 'GET', htu, token, iat: Math.floor(clock.now() / 1000) }),
            htm: 'GET',
            htu,
          },
        });
      };
      const expectRefusal = async (
        what: 'membership' | 'grant',
        fn: () => Promise<boolean>,
        reportedHere = true,
      ) => {
        const before = events.events.length;
        const accepted = await fn();
        if (what === 'membership') {
          r.forgedMembershipsTried++;
          if (accepted) r.forgedMembershipsAccepted++;
        } else {
          r.misdeliveredGrantsTried++;
          if (accepted) r.misdeliveredGrantsAccepted++;
        }
        if (!accepted && reportedHere && events.events.length === before) r.ownerEventsLost++;
      };
      if ((await present(bob, 'bob', bob)).ok) r.boundGrantsAccepted++;
      if (i % every !== 0) {
        gate.close();
        continue;
      }
      const members = [memberOf(alice, 'owner'), memberOf(bob, 'viewer'), memberOf(mallory, 'viewer')];
      const forged = [
        // The cloud's binding key, the issuer key, mallory's own key, and the owner's kid over a cloud signature.
        signCompact(
          { alg: 'EdDSA', typ: MEMBERSHIP_TYP, kid: keys.binding.kid },
          { serial, epoch, version: 9, iat: 1, members },
          keys.binding.privateKey,
        ),
        signCompact(
          { alg: 'EdDSA', typ: MEMBERSHIP_TYP, kid: keys.issuer.kid },
          { serial, epoch, version: 9, iat: 1, members },
          keys.issuer.privateKey,
        ),
        signMembership(mallory, { serial, epoch, version: 9, members }),
        signCompact(
          { alg: 'EdDSA', typ: MEMBERSHIP_TYP, kid: alice.jkt },
          { serial, epoch, version: 9, iat: 1, members },
          keys.binding.privateKey,
        ),
      ];
      for (const jws of forged)
        await expectRefusal('membership', async () => {
          try {
            owner.acceptMembership(jws);
            return true;
          } catch {
            return false;
          }
        });
      // A cloud-signed binding naming mallory (the old path).
      await expectRefusal(
        'membership',
        async () => {
          try {
            guardLegacyBinding(owner, (jws) => gate.trust.acceptBinding(jws))(
              signBindingRecord(keys.binding, { serial, owner: 'mallory', viewers: [], version: 99 + i }),
            );
            return true;
          } catch {
            // Reported by the command dispatcher as command_refused on the real path (not built here).
            return false;
          }
        },
        false,
      );
      // Misdelivered grants: alice's grant in bob's session, bob's in mallory's, alice's in mallory's,
      // and a grant the cloud minted for mallory herself.
      await expectRefusal('grant', async () => (await present(bob, 'alice', alice)).ok);
      await expectRefusal('grant', async () => (await present(mallory, 'bob', bob)).ok);
      await expectRefusal('grant', async () => (await present(mallory, 'alice', alice)).ok);
      await expectRefusal('grant', async () => (await present(mallory, 'mallory', mallory)).ok);
      gate.close();
    }
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
