/**
 * Incident replay: a fleet on one machine, a broker outage, and a faulty cloud that misroutes
 * viewer connections and stream.start commands while the fleet comes back. Prints one table and
 * exits non-zero if any frame reached a wrong viewer, any misroute was accepted or any security
 * event was lost. The logic lives in bench/_incident.ts (test/incident runs it small).
 * Usage: npx tsx bench/incident.ts [--cameras 200] [--fleet-1000] [--full 3] [--outage 30]
 *        [--misroute 0.1] [--stale 0.05] [--json FILE]
 */
import { parseArgs } from 'node:util';
import { formatIncident, runIncident } from './_incident.ts';
import { writeFigures } from './_json.ts';

const { values } = parseArgs({
  options: {
    cameras: { type: 'string', default: '200' },
    'fleet-1000': { type: 'boolean', default: false },
    full: { type: 'string', default: '3' },
    outage: { type: 'string', default: '30' },
    misroute: { type: 'string', default: '0.1' },
    stale: { type: 'string', default: '0.05' },
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
writeFigures(values.json, 'incident', t0, {
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
process.exitCode = r.ok ? 0 : 1;
