/**
 * The code tables in docs/identity.md and docs/grants.md, rendered from the rooms' closed code
 * lists (agent/identity/codes.ts, agent/grants/codes.ts). `npm run docs:codes` rewrites the text
 * between each table's markers; test/docs/code-tables.test.ts fails when a committed doc differs.
 * Must never touch text outside the markers.
 */
import { GRANTS_CODES } from '../agent/grants/codes.ts';
import { IDENTITY_START_CODES, PROVISION_CODES, RENEW_CODES } from '../agent/identity/codes.ts';
import { STORAGE_CODES } from '../agent/storage/codes.ts';

type Rows = Record<string, { when: string; fix: string }>;

/** `rows` with `extra` placed right after the entry `after`. */
function insertAfter(rows: Rows, after: string, extra: Rows): Rows {
  const out: Rows = {};
  for (const [k, v] of Object.entries(rows)) {
    out[k] = v;
    if (k === after) Object.assign(out, extra);
  }
  return out;
}

interface CodeTable {
  doc: string;
  name: string;
  source: string;
  header: [string, string, string];
  rows: Record<string, { when: string; fix: string }>;
}

export const CODE_TABLES: readonly CodeTable[] = [
  {
    doc: 'docs/identity.md',
    name: 'identity-start',
    source: 'agent/identity/codes.ts',
    header: ['code', 'when', 'what the technician does'],
    rows: IDENTITY_START_CODES,
  },
  {
    doc: 'docs/identity.md',
    name: 'provision',
    source: 'agent/identity/codes.ts and agent/storage/codes.ts',
    header: ['code', 'meaning', 'fix'],
    // The state dir's access checks (agent/storage/) are what provisioning meets first on disk.
    rows: insertAfter(PROVISION_CODES, 'ERR_PROVISION_STATE_DIR', STORAGE_CODES),
  },
  {
    doc: 'docs/identity.md',
    name: 'renew',
    source: 'agent/identity/codes.ts',
    header: ['code', 'when', 'fix'],
    rows: RENEW_CODES,
  },
  {
    doc: 'docs/grants.md',
    name: 'grants',
    source: 'agent/grants/codes.ts',
    header: ['code', 'when', 'fix'],
    rows: GRANTS_CODES,
  },
];

const cell = (s: string) => s.replace(/\|/g, '\\|');

function renderTable(t: CodeTable): string {
  return [
    `<!-- codes:${t.name} generated from ${t.source} by \`npm run docs:codes\`; do not edit by hand -->`,
    `| ${t.header.join(' | ')} |`,
    '|---|---|---|',
    ...Object.entries(t.rows).map(([code, r]) => `| \`${code}\` | ${cell(r.when)} | ${cell(r.fix)} |`),
    `<!-- /codes:${t.name} -->`,
  ].join('\n');
}

/** Returns `text` (the doc at `doc`) with each of its tables re-rendered; throws on a missing marker. */
export function renderCodeTables(doc: string, text: string): string {
  let out = text;
  for (const t of CODE_TABLES.filter((x) => x.doc === doc)) {
    const start = out.indexOf(`<!-- codes:${t.name} `);
    const endMarker = `<!-- /codes:${t.name} -->`;
    const end = out.indexOf(endMarker);
    if (start < 0 || end < start) throw new Error(`${doc}: markers for the ${t.name} code table are missing`);
    out = out.slice(0, start) + renderTable(t) + out.slice(end + endMarker.length);
  }
  return out;
}

export const CODE_DOCS = [...new Set(CODE_TABLES.map((t) => t.doc))];
