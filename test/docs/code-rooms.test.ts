// Every `new LenscapError('ERR_…')` in a room raises a code from that room's own closed list
// (agent/<room>/codes.ts) or a shared one: the type (ErrorCode) only knows the union of all lists,
// so this scan keeps each room to its own. The few cross-room raises are named below, each with why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED_CODES } from '../../agent/errors.ts';

const agent = new URL('../../agent/', import.meta.url).pathname;

/** room/file → codes it raises from another room's list, and why that is right for now. */
const CROSS_ROOM: Record<string, string[]> = {
  // The version floors are the grants room's rollback guard; storage only keeps the file.
  'storage/version-floors.ts': ['ERR_VERSION_FLOORS_INVALID'],
  // `lenscap provision` usage errors are reported with provisioning's own code.
  'cli/provision.ts': ['ERR_PROVISION_USAGE'],
  // cmd/binding refused because the owner holds trust: the owner room's code, raised at the command.
  'cloud/owner-commands.ts': ['ERR_BINDING_OWNER_HELD'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.ts') ? [p] : [];
  });
}

test("each room raises only its own codes (agent/<room>/codes.ts) or shared ones", () => {
  const rooms = readdirSync(agent).filter((d) => existsSync(join(agent, d, 'codes.ts')));
  assert.ok(rooms.length >= 10, `rooms with a code list: ${rooms.join(', ')}`);
  const wrong: string[] = [];
  let raised = 0;
  for (const room of rooms) {
    const own = new Set(readFileSync(join(agent, room, 'codes.ts'), 'utf8').match(/\bERR_[A-Z0-9_]+\b/g) ?? []);
    for (const file of files(join(agent, room))) {
      const rel = file.slice(agent.length);
      if (rel.endsWith('/codes.ts')) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/new LenscapError(?:<[^>]*>)?\(\s*'(ERR_[A-Z0-9_]+)'/g)) {
        raised++;
        const code = m[1]!;
        if (own.has(code) || (SHARED_CODES as readonly string[]).includes(code)) continue;
        if (CROSS_ROOM[rel]?.includes(code)) continue;
        wrong.push(`${rel}: ${code}`);
      }
    }
  }
  assert.ok(raised > 50, `found ${raised} raises (the scan still matches the code)`);
  assert.deepEqual(wrong, [], "codes raised outside their room's list");
});
