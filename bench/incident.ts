/**
 * Incident replay: a fleet on one machine, a broker outage, and a faulty cloud that misroutes
 * viewer connections and stream.start commands while the fleet comes back. Prints one table and
 * exits non-zero if any frame reached a wrong viewer, any misroute was accepted or any security
 * event was lost. The logic lives in harness/incident/incident.ts (test/incident runs it small).
 * Usage: npx tsx bench/incident.ts [--cameras 200] [--fleet-1000] [--full 3] [--outage 30]
 *        [--misroute 0.1] [--stale 0.05] [--sealed-pushes 6] [--json FILE]
 * The sealed-push phase (harness/incident/seal.ts): a faulty relay hands a share of sealed pushes
 * (at least one, --misroute rounded to "every k-th") to the wrong viewer; 0 skips it.
 * The events phase (harness/incident/events.ts, issue 16): --event-cameras (default min(cameras, 20))
 * keep recording sealed snapshots and clips through their own --outage; afterwards a mixed-up
 * thumbnail cache serves a share (--misroute, at least one) of one user's thumbnails to another; 0 skips it.
 */
import { parseArgs } from 'node:util';
import { formatIncident, runIncident } from '../harness/incident/incident.ts';
import { writeFigures } from './_json.ts';
import { runSealedRelayIncident } from '../harness/incident/seal.ts';
import { runOwnerHeldIncident } from '../harness/incident/owner.ts';
import { formatEventsIncident, runEventsIncident } from '../harness/incident/events.ts';

const { values } = parseArgs({
  options: {
    cameras: { type: 'string', default: '200' },
    'fleet-1000': { type: 'boolean', default: false },
    full: { type: 'string', default: '3' },
    outage: { type: 'string', default: '30' },
    misroute: { type: 'string', default: '0.1' },
    stale: { type: 'string', default: '0.05' },
    'sealed-pushes': { type: 'string', default: '6' },
    'event-cameras': { type: 'string' },
    json: { type: 'string' },
  },
});
const cameras = values['fleet-1000'] ? 1000 : Number(values.cameras);
const t0 = Date.now();
const r = await runIncident({
  cameras,
  full: Number(values.full),
  outageSeconds: Number(values.outage),
  misroute: Number(values.misroute),
  stale: Number(values.stale),
  patienceMs: 300_000,
  log: (l) => process.stderr.write(`${l}\n`),
});
console.log(
  `incident replay: ${cameras} cameras, misroute share ${values.misroute}, stale share ${values.stale}, real mosquitto (mTLS, per-serial ACL), dev-CA identities, real FLV viewers; ${((Date.now() - t0) / 1000).toFixed(0)} s in all\n`,
);
console.log(formatIncident(r));
const sealedPushes = Number(values['sealed-pushes']);
const sealed =
  sealedPushes > 0
    ? await runSealedRelayIncident({
        pushes: sealedPushes,
        misroute: Math.max(Number(values.misroute), 1 / sealedPushes),
        log: (l) => process.stderr.write(`${l}\n`),
      })
    : undefined;
if (sealed)
  console.log(
    `sealed pushes through a faulty relay: ${sealed.sealedPushes} pushes, ${sealed.misroutedSealedPushes} handed to the wrong viewer; frames opened by wrong viewers ${sealed.framesDecodedByWrongViewer} (goal 0), by bound viewers ${sealed.sealedFramesPlayedByBoundViewer} (> 0); relay-side capture ${sealed.relayFramesCaptured} frames, decodable by a plain ffmpeg ${sealed.relayFramesDecodable} (goal 0)`,
  );
// Owner-held trust (issue 14): a confused cloud forging memberships and misdelivering grants.
const owned = await runOwnerHeldIncident({
  cameras: Math.min(cameras, 50),
  share: Math.max(Number(values.misroute), 0.1),
});
console.log(
  `owner-held: ${owned.cameras} cameras claimed with their codes; forged memberships ${owned.forgedMembershipsAccepted}/${owned.forgedMembershipsTried} accepted (goal 0), misdelivered grants ${owned.misdeliveredGrantsAccepted}/${owned.misdeliveredGrantsTried} accepted (goal 0), bound grants played ${owned.boundGrantsAccepted}, refusals without an event ${owned.ownerEventsLost}`,
);
// Events (issue 16): recording through an outage, uploads after it, a mixed-up thumbnail cache.
const eventCameras = Number(values['event-cameras'] ?? Math.min(cameras, 20));
const ev =
  eventCameras > 0
    ? await runEventsIncident({
        cameras: eventCameras,
        outageSeconds: Number(values.outage),
        share: Math.max(Number(values.misroute), 0.1),
        log: (l) => process.stderr.write(`${l}\n`),
      })
    : undefined;
if (ev) console.log(formatEventsIncident(ev));
writeFigures(values.json, 'incident', t0, {
  ...(ev
    ? {
        eventCameras: ev.cameras,
        snapshotsServedToWrongUser: ev.snapshotsServedToWrongUser,
        snapshotsDecodedByWrongUser: ev.snapshotsDecodedByWrongUser,
        snapshotsDecodedByOwner: ev.snapshotsDecodedByOwner,
        clipsRecordedDuringOutage: ev.clipsRecordedDuringOutage,
        clipsLost: ev.clipsLost,
        snapshotsLost: ev.snapshotsLost,
        artifactsDropped: ev.artifactsDropped,
        eventDrainSeconds: ev.drainSeconds,
        eventUploadMedianMs: ev.uploadLatencyMedianMs,
      }
    : {}),
  forgedMembershipsTried: owned.forgedMembershipsTried,
  forgedMembershipsAccepted: owned.forgedMembershipsAccepted,
  misdeliveredGrantsTried: owned.misdeliveredGrantsTried,
  misdeliveredGrantsAccepted: owned.misdeliveredGrantsAccepted,
  boundGrantsAccepted: owned.boundGrantsAccepted,
  ownerEventsLost: owned.ownerEventsLost,
  ...(sealed
    ? {
        misroutedSealedPushes: sealed.misroutedSealedPushes,
        framesDecodedByWrongViewer: sealed.framesDecodedByWrongViewer,
        relayFramesCaptured: sealed.relayFramesCaptured,
        relayFramesDecodable: sealed.relayFramesDecodable,
        sealedFramesPlayedByBoundViewer: sealed.sealedFramesPlayedByBoundViewer,
      }
    : {}),
  cameras,
  framesToWrongViewers: r.framesToWrongViewer,
  bytesToWrongViewers: r.bytesToWrongViewer,
  misroutesTried: r.sessions.misrouted,
  misroutesAccepted: r.misroutesAccepted,
  eventsExpected: r.expectedEvents,
  eventsLost: r.eventsLost,
  misrouteToEventMedianMs: r.latencyMs.median,
  backFraction: r.reconnect.back / cameras,
  peakFraction: r.reconnect.peakPerSec / cameras,
});
const sealedOk =
  !sealed ||
  (sealed.framesDecodedByWrongViewer === 0 &&
    sealed.relayFramesDecodable === 0 &&
    sealed.sealedFramesPlayedByBoundViewer > 0 &&
    sealed.misroutedSealedPushes > 0);
const ownedOk =
  owned.forgedMembershipsAccepted === 0 &&
  owned.misdeliveredGrantsAccepted === 0 &&
  owned.forgedMembershipsTried > 0 &&
  owned.misdeliveredGrantsTried > 0 &&
  owned.ownerEventsLost === 0 &&
  owned.boundGrantsAccepted === owned.cameras;
process.exitCode = r.ok && sealedOk && ownedOk && (!ev || ev.ok) ? 0 : 1;
