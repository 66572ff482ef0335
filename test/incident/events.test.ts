/**
 * The events phase of the incident replay, small: event cameras keep recording sealed snapshots and
 * clips through a broker outage (aedes, mTLS), every artifact is uploaded after it (presigned PUT to
 * s3rver over HTTPS), and a mixed-up thumbnail cache hands a share of one user's thumbnails to the
 * other, who decodes none of them while owners decode theirs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ffmpegHasEncoder, needsFfmpeg } from '../../harness/ffmpeg.ts';
import { formatEventsIncident, runEventsIncident } from '../../harness/incident/events.ts';

test(
  'incident events: recorded through the outage, 0 clips lost, wrong users decode 0 thumbnails',
  { ...needsFfmpeg('libx264', ffmpegHasEncoder('libx264')), timeout: 150_000 },
  async () => {
    const r = await runEventsIncident({ cameras: 4, outageSeconds: 3, share: 0.25, patienceMs: 60_000 });
    const table = formatEventsIncident(r);
    assert.ok(r.clipsRecordedDuringOutage > 0, table);
    assert.equal(r.clipsLost, 0, table);
    assert.equal(r.snapshotsLost, 0, table);
    assert.equal(r.artifactsDropped, 0, table);
    assert.ok(r.snapshotsServedToWrongUser > 0, table);
    assert.equal(r.snapshotsDecodedByWrongUser, 0, table);
    assert.ok(r.snapshotsDecodedByOwner > 0, table);
    assert.ok(r.ok, table);
  },
);
