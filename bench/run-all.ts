/**
 * `npm run bench`: runs every bench/*.ts (except this file) one after another — they measure CPU,
 * so never in parallel — and writes docs/benchmarks.md with the machine, date, commit and each
 * script's printed figures, and docs/benchmarks.json with each script's `--json FILE` figures.
 * Figures are ratios against a baseline measured in the same run; no figure is asserted here. A
 * block of hand-measured notes (between NOTES_BEGIN and NOTES_END) is carried over from the last report.
 * `npm run bench -- NAME...` runs only the named scripts. Each script has a time limit (LIMIT_S).
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

/** Per-script wall-clock limits (s); a script over its limit is killed and reported failed. */
const LIMIT_S: Record<string, number> = {
  idle: 180,
  stream: 300,
  grants: 120,
  storm: 600,
  incident: 600,
  soak: 420,
  flood: 120,
  motion: 180,
};
const jsonDir = mkdtempSync(join(os.tmpdir(), 'lenscap-bench-json-'));
const figures: Record<string, unknown> = {};

const dir = new URL('.', import.meta.url).pathname;
const only = process.argv.slice(2);
const scripts = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run-all.ts' && !f.startsWith('_'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();

let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
} catch {
  /* not a checkout */
}
const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
const started = Date.now();
const sections: string[] = [];
const headlines: string[] = [];
let failed = 0;
// Lines that carry a verdict or a ratio: repeated at the top so the report opens with the answers.
const HEADLINE = /\b(goal|verdict|ratio|target)\b|FRAMES DELIVERED|EVENTS LOST|misroute to event/i;
for (const script of scripts) {
  const t0 = Date.now();
  process.stderr.write(`bench: ${script} …\n`);
  const name0 = script.replace(/\.ts$/, '');
  const jsonFile = join(jsonDir, `${name0}.json`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${script}`, '--json', jsonFile], {
    encoding: 'utf8',
    timeout: (LIMIT_S[name0] ?? 600) * 1000,
    killSignal: 'SIGKILL',
    maxBuffer: 16 << 20,
  });
  try {
    figures[name0] = JSON.parse(readFileSync(jsonFile, 'utf8'));
  } catch {
    figures[name0] = { failed: true };
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const ok = res.status === 0;
  if (!ok) failed++;
  process.stderr.write(
    `bench: ${script} ${ok ? 'done' : `FAILED (exit ${res.status ?? res.signal})`} in ${secs} s\n`,
  );
  const name = script.replace(/\.ts$/, '');
  headlines.push(
    ...(res.stdout || '')
      .split('\n')
      .filter((l) => HEADLINE.test(l))
      .map((l) => `- ${name}: ${l.trim().replace(/\s{2,}/g, '  ')}`),
  );
  if (!ok) headlines.push(`- ${name}: **failed** (exit ${res.status ?? res.signal})`);
  sections.push(
    `## ${script.replace(/\.ts$/, '')}\n\n\`npx tsx bench/${script}\` — ${ok ? 'ok' : `**failed** (exit ${res.status ?? res.signal})`}, ${secs} s\n\n\`\`\`\n${(res.stdout || '').trim()}\n${ok ? '' : (res.stderr || '').trim().split('\n').slice(-15).join('\n')}\n\`\`\`\n`,
  );
}
// Figures measured by hand (repeated runs, other machines) live between these markers and are
// carried over from the previous report, so a refresh never drops them.
const NOTES_BEGIN = '<!-- hand-measured notes: kept by npm run bench -->';
const NOTES_END = '<!-- end of hand-measured notes -->';
let notes = '';
try {
  const prev = readFileSync(new URL('../docs/benchmarks.md', import.meta.url), 'utf8');
  const a = prev.indexOf(NOTES_BEGIN);
  const b = prev.indexOf(NOTES_END);
  if (a >= 0 && b > a) notes = `${prev.slice(a, b + NOTES_END.length)}\n\n`;
} catch {
  /* first report */
}
const report = `# Benchmarks

<!-- Written by \`npm run bench\`. Re-run it to refresh; do not edit by hand. -->

- machine: ${os.type()} ${os.release()} ${os.arch()}, ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB
- node: ${process.version}
- date: ${new Date().toISOString()}
- commit: ${commit}
- total: ${((Date.now() - started) / 1000).toFixed(0)} s
- reproduce: \`npm ci && npm run bench\` (or \`npm run bench -- grants\` for one script)

Each figure is measured next to its baseline in the same run; ratios and medians of several
repetitions (min/max) are printed by each script. These machines are shared and noisy: compare
ratios, not absolute numbers, across runs.

## Headlines

${headlines.join('\n') || '- (none)'}

${notes}${sections.join('\n')}`;
writeFileSync(new URL('../docs/benchmarks.md', import.meta.url), report);
// `npm run bench -- NAME` refreshes only NAME's figures and keeps the others'.
let previous: Record<string, unknown> = {};
if (only.length) {
  try {
    previous = JSON.parse(
      readFileSync(new URL('../docs/benchmarks.json', import.meta.url), 'utf8'),
    ) as Record<string, unknown>;
  } catch {
    previous = {};
  }
}
const merged = { ...previous, ...figures };
writeFileSync(
  new URL('../docs/benchmarks.json', import.meta.url),
  JSON.stringify(
    {
      machine: `${os.cpus().length} × ${cpu}`,
      node: process.version,
      commit,
      date: new Date().toISOString(),
      ...merged,
    },
    null,
    2,
  ) + '\n',
);
rmSync(jsonDir, { recursive: true, force: true });
process.stderr.write(`bench: wrote docs/benchmarks.md (${failed} failed)\n`);
process.exitCode = failed ? 1 : 0;
