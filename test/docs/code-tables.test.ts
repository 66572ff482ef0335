import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AUDIT_CODES } from '../../agent/audit/codes.ts';
import { CLI_CODES } from '../../agent/cli/codes.ts';
import { CLOUD_CODES } from '../../agent/cloud/codes.ts';
import { CONFIG_CODES } from '../../agent/config/codes.ts';
import { EVENTS_CODES } from '../../agent/events/codes.ts';
import { SHARED_CODES } from '../../agent/errors.ts';
import { GRANTS_CODES } from '../../agent/grants/codes.ts';
import { IDENTITY_START_CODES, PROVISION_CODES, RENEW_CODES } from '../../agent/identity/codes.ts';
import { OWNER_CODES } from '../../agent/owner/codes.ts';
import { SEALING_CODES } from '../../agent/sealing/codes.ts';
import { STORAGE_CODES } from '../../agent/storage/codes.ts';
import { STREAM_CODES } from '../../agent/stream/codes.ts';
import { UPLOAD_CODES } from '../../agent/uploads/codes.ts';
import { CODE_DOCS, renderCodeTables } from '../../scripts/code-docs.ts';

const root = new URL('../../', import.meta.url);

for (const doc of CODE_DOCS) {
  test(`${doc}: the code tables match the rooms' code lists (run \`npm run docs:codes\`)`, () => {
    const text = readFileSync(new URL(doc, root), 'utf8');
    assert.equal(text, renderCodeTables(doc, text));
  });
}

test('each code belongs to exactly one room, and every code reads ERR_<WORDS>', () => {
  const lists: Record<string, readonly string[]> = {
    shared: SHARED_CODES,
    audit: AUDIT_CODES,
    cli: CLI_CODES,
    cloud: CLOUD_CODES,
    config: CONFIG_CODES,
    events: EVENTS_CODES,
    grants: Object.keys(GRANTS_CODES),
    identity: [
      ...Object.keys(IDENTITY_START_CODES),
      ...Object.keys(PROVISION_CODES),
      ...Object.keys(RENEW_CODES),
    ],
    owner: OWNER_CODES,
    sealing: SEALING_CODES,
    storage: Object.keys(STORAGE_CODES),
    stream: STREAM_CODES,
    uploads: UPLOAD_CODES,
  };
  const seen = new Map<string, string>();
  for (const [room, codes] of Object.entries(lists)) {
    for (const code of codes) {
      assert.match(code, /^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/, `${room}: ${code}`);
      assert.ok(!seen.has(code), `${code} is in both ${seen.get(code)} and ${room}`);
      seen.set(code, room);
    }
  }
});
