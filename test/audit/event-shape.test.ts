// The security event is a union keyed by `type`: a grant refusal carries a closed refusal reason,
// a coded refusal an ErrorCode, other types no reason. The @ts-expect-error lines are the test:
// `npm run lint` (tsc) fails if any of them stops being an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SecurityEvent } from '../../agent/audit/events.ts';

const base = { at: '2026-01-01T00:00:00.000Z', serial: 'CAM-1' };

test('security events are keyed by type (checked by the type checker)', () => {
  const ok: SecurityEvent[] = [
    { ...base, type: 'grant_refused', reason: 'wrong_audience', claimedAud: 'CAM-2' },
    { ...base, type: 'command_refused', reason: 'ERR_COMMAND_BAD_OP', source: 'mqtt:?' },
    { ...base, type: 'trust_updated', data: { version: 2 } },
  ];
  // @ts-expect-error a grant refusal's reason is one of the closed refusal reasons
  const freeReason: SecurityEvent = { ...base, type: 'grant_refused', reason: 'because' };
  // @ts-expect-error a coded refusal's reason is an error code from a room's list
  const badCode: SecurityEvent = { ...base, type: 'command_refused', reason: 'ERR_NOT_A_CODE' };
  // @ts-expect-error a trust update carries no reason
  const stray: SecurityEvent = { ...base, type: 'trust_updated', reason: 'expired' };
  // @ts-expect-error only a grant refusal names the audience it claimed
  const aud: SecurityEvent = {
    ...base,
    type: 'command_refused',
    reason: 'ERR_COMMAND_BAD_OP',
    claimedAud: 'x',
  };
  assert.equal(ok.length + [freeReason, badCode, stray, aud].length, 7);
});
