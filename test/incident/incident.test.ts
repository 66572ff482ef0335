/**
 * The incident replay, small: 20 cameras with dev-CA identities on a real mosquitto (mTLS,
 * per-serial ACL), a 5 s broker outage, and a faulty cloud misrouting viewer connections and
 * stream.start commands while the fleet comes back. No frame may reach a wrong viewer, no misroute
 * may be accepted, no security event may be lost. A fast reconnect policy keeps it bounded; the
 * shipped policy runs in bench/incident.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needs } from '../../harness/requires.ts';
import { formatIncident, runIncident } from '../../harness/incident/incident.ts';

test(
  'incident replay: 20 cameras, 5 s outage, misroutes refused, 0 frames to wrong viewers, 0 events lost',
  { ...needs('mosquitto'), timeout: 110_000 },
  async () => {
    const r = await runIncident({
      cameras: 20,
      full: 1,
      outageSeconds: 5,
      misroute: 0.2,
      stale: 0.1,
      backoff: { baseMs: 200, capMs: 2000, initialDelayMaxMs: 1000 },
      keyPool: 4,
      patienceMs: 40_000,
    });
    const table = formatIncident(r);
    assert.equal(r.reconnect.back, 20, table);
    assert.ok(r.sessions.misrouted >= 8, table);
    assert.ok(r.sessions.stale >= 4, table);
    assert.equal(r.framesToWrongViewer, 0, table);
    assert.equal(r.bytesToWrongViewer, 0, table);
    assert.equal(r.misroutesAccepted, 0, table);
    assert.equal(r.misroutesRefused, r.sessions.misrouted - r.sessions.undelivered, table);
    assert.equal(r.eventsLost, 0, table);
    assert.ok(r.expectedEvents > 0 && r.eventsReceived >= r.expectedEvents, table);
    assert.ok(r.ok, table);
  },
);
