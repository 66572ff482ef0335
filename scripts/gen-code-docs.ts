/** Rewrites the generated code tables in docs/identity.md and docs/grants.md (`npm run docs:codes`). */
import { readFileSync, writeFileSync } from 'node:fs';
import { CODE_DOCS, renderCodeTables } from './code-docs.ts';

const root = new URL('..', import.meta.url);
for (const doc of CODE_DOCS) {
  const file = new URL(doc, root);
  writeFileSync(file, renderCodeTables(doc, readFileSync(file, 'utf8')));
  console.log(`wrote ${doc}`);
}
