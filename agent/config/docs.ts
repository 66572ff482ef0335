/** Renders docs/config.md from the schema; a test fails when the committed file differs. */
import { configFields } from './fields.ts';
import { CONFIG_VERSION, configMigrations } from './migrations.ts';

export function renderConfigDocs(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from agent/config/schema.ts by `npm run docs:config`. Do not edit by hand: a test compares. -->',
    '',
    'One JSON file, passed as `lenscap run --config FILE` (on a device: `/etc/lenscap/agent.json`).',
    'Every key is optional where a default is shown. Any single key can be overridden by an environment',
    'variable named after its path (`gate.port` → `LENSCAP_GATE_PORT`; lists as JSON or comma-separated).',
    'Unknown keys are errors. Check a file with `lenscap config check FILE`.',
    '',
  ];
  let section = '';
  for (const f of configFields()) {
    const top = f.path.includes('.') ? f.path.split('.')[0]! : '(top level)';
    if (top !== section) {
      if (section) lines.push('');
      section = top;
      lines.push(`## ${top === '(top level)' ? 'Top level' : `\`${top}\``}`, '');
      if (top !== '(top level)') lines.push(f.section, '');
      lines.push('| key | type | default | env | description |', '|---|---|---|---|---|');
    }
    const def = f.default === undefined ? '—' : `\`${JSON.stringify(f.default)}\``;
    const env = f.env ? `\`${f.env}\`` : '—';
    lines.push(`| \`${f.path}\` | ${f.type} | ${def} | ${env} | ${f.description.replace(/\|/g, '\\|')} |`);
  }
  lines.push(
    '',
    '## Versions and migrations',
    '',
    `This agent writes and validates config version ${CONFIG_VERSION}. An older file is migrated in memory at`,
    'load, one step at a time (the file itself is not rewritten); `lenscap config check FILE` prints',
    '`migrated: …` and the agent logs `CONFIG_MIGRATED` with the steps. A file newer than the agent is',
    'refused with `ERR_CONFIG_VERSION`.',
    '',
    '| from | to | what changed |',
    '|---|---|---|',
    ...configMigrations.map((m) => `| ${m.from} | ${m.to} | ${m.summary.replace(/\|/g, '\\|')} |`),
  );
  return lines.join('\n') + '\n';
}
