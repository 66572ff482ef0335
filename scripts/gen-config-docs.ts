/** Writes docs/config.md from the config schema (`npm run docs:config`). */
import { writeFileSync } from 'node:fs';
import { renderConfigDocs } from '../agent/config/docs.ts';

writeFileSync(new URL('../docs/config.md', import.meta.url), renderConfigDocs());
console.log('wrote docs/config.md');
