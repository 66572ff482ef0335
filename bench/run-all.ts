/**
 * `npm run bench`: runs every bench/*.ts (except this file) one after another — they measure CPU,
 * so never in parallel — and writes docs/benchmarks.md with the machine, date, commit and each
 * script's printed figures, and docs/benchmarks.json with each script's `--json FILE` figures.
 * Figures are ratios against a baseline measured in the same run; no figure is asserted here. A
 * block of hand-measured notes (between NOTES_BEGIN and NOTES_END) is carried over from the last report.
 * `npm run bench -- NAME...` runs only the named scripts and keeps the other scripts' sections and
 * figures from the previous report. Each script has a time limit (LIMIT_S).
 * The arm64 column comes from docs/benchmarks-arm64.json: the figures the QEMU board test
 * (`npm run test:arm`) measured inside the emulated guest and wrote to
 * .qemu-cache/last-run/arm-figures.json (copy it there to publish a run).
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
  viewers: 540,
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
// A partial run keeps the sections (and headlines) of the scripts it did not run.
if (only.length) {
  const ran = new Set(scripts.map((f) => f.replace(/\.ts$/, '')));
  const old = existsSync(new URL('../docs/benchmarks.md', import.meta.url))
    ? readFileSync(new URL('../docs/benchmarks.md', import.meta.url), 'utf8')
    : '';
  const oldHeadlines = /## Headlines\n\n([\s\S]*?)\n\n## /.exec(old)?.[1]?.split('\n') ?? [];
  headlines.push(
    ...oldHeadlines.filter((l) => !ran.has(/^- (\w+):/.exec(l)?.[1] ?? '') && !/^- arm64/.test(l)),
  );
  for (const m of old.matchAll(/^## (\w+)\n\n`npx tsx bench\/[\s\S]*?\n```\n[\s\S]*?\n```\n/gm))
    if (!ran.has(m[1]!)) sections.push(`${m[0]}`);
  sections.sort((a, b) => a.localeCompare(b));
  headlines.sort((a, b) => (/^- (\w+)/.exec(a)?.[1] ?? '').localeCompare(/^- (\w+)/.exec(b)?.[1] ?? ''));
}
const arm = armColumn();
// Figures measured by hand (repeated runs, other machines) live between these markers and are
// carried over from the previous report, so a refresh never drops them.
const NOTES_BEGIN = '<!-- hand-measured notes: kept by npm run bench -->';
const NOTES_END = '<!-- end of hand-measured notes -->';
let notes = '';
try {
  const prev = readFileSync(new URL('../docs/benchmarks.md', import.meta.url), 'utf8');
  // Every block, each once: keeping only the first dropped the later ones (the storm runs), and
  // carrying them all without dedup multiplied the first one at every refresh.
  const blocks = new Set<string>();
  for (let a = prev.indexOf(NOTES_BEGIN); a >= 0; a = prev.indexOf(NOTES_BEGIN, a + 1)) {
    const b = prev.indexOf(NOTES_END, a);
    if (b < 0) break;
    blocks.add(prev.slice(a, b + NOTES_END.length));
  }
  notes = [...blocks].map((x) => `${x}\n\n`).join('');
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
${arm}
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

/**
 * x64 (this run, or the kept previous figures) beside arm64 (the QEMU guest's figures,
 * docs/benchmarks-arm64.json): the agent's idle RSS over a bare node, idle CPU, cold start over
 * ffmpeg alone, warm join. The arm64 guest is emulated (TCG): its absolutes are not a board's.
 */
function armColumn(): string {
  const file = new URL('../docs/benchmarks-arm64.json', import.meta.url);
  if (!existsSync(file)) return '';
  const a = JSON.parse(readFileSync(file, 'utf8')) as Record<string, number | string | null>;
  let x: Record<string, Record<string, number | string | null>> = {};
  try {
    x = JSON.parse(readFileSync(new URL('../docs/benchmarks.json', import.meta.url), 'utf8')) as typeof x;
  } catch {
    /* none yet */
  }
  const idle = (figures.idle ?? x.idle ?? {}) as Record<string, number>;
  const stream = (figures.stream ?? x.stream ?? {}) as Record<string, number>;
  const n = (v: unknown, d = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '—');
  const ratio = (p: unknown, q: unknown) =>
    typeof p === 'number' && typeof q === 'number' && q > 0 ? (p / q).toFixed(2) : '—';
  const rows = [
    [
      'idle RSS, MB (agent / bare node)',
      `${n(idle.rssMb)} / ${n(idle.bareNodeRssMb)}`,
      `${n(a.rssMb)} / ${n(a.bareNodeRssMb)}`,
    ],
    [
      'idle RSS ratio agent / bare node',
      ratio(idle.rssMb, idle.bareNodeRssMb),
      ratio(a.rssMb, a.bareNodeRssMb),
    ],
    ['idle CPU, % of one core', n(idle.cpuPercent, 2), n(a.cpuPercent, 2)],
    ['cold start / ffmpeg alone (coldOverFfmpeg)', n(stream.coldOverFfmpeg, 2), n(a.coldOverFfmpeg, 2)],
    ['cold start, ms', n(stream.coldStartMs, 0), n(a.coldStartMs, 0)],
    ['warm join through the gate, ms', n(stream.warmJoinMs, 1), n(a.warmJoinMs, 0)],
  ];
  return `
## x64 and arm64 (emulated)

arm64: ${a.emulated ?? 'QEMU TCG'}; measured ${a.measuredAt ?? '?'} by \`npm run test:arm\`
(inside the guest: the installed agent under systemd with \`${a.nodeFlags ?? '?'}\`,
idle with its cloud link up; cold start and warm join played from the host through the guest's
forwarded gate port, so they include the emulated network). Compare ratios, not absolutes.${a.note ? `\nNote: ${a.note}.` : ''}

| figure | x64 (this machine) | arm64 (QEMU, emulated) |
|---|---|---|
${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}
`;
}
