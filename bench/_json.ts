/**
 * `--json FILE` for every bench script: the headline figures as numbers, written atomically so
 * `npm run bench` (bench/run-all.ts) can collect them into docs/benchmarks.json.
 * Must never write a non-finite number as if it were a measurement: NaN/Infinity become null.
 */
import { renameSync, writeFileSync } from 'node:fs';

export type Figures = { [key: string]: number | null | string | boolean | Figures };

function clean(v: Figures[string]): Figures[string] {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clean(x)]));
  return v;
}

/** Writes `figures` to `file` (no-op without a file), with the script's name and duration. */
export function writeFigures(file: string | undefined, script: string, startedMs: number, figures: Figures) {
  const out = {
    script,
    durationS: Math.round((Date.now() - startedMs) / 100) / 10,
    ...(clean(figures) as Figures),
  };
  process.stdout.write(`duration ${out.durationS} s\n`);
  if (!file) return;
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n');
  renameSync(tmp, file);
}
