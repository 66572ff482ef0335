// Timing for the QEMU board test: host-side phases (wall clock) and guest-side marks (lines
// "name uptime" the guest scenario appends to the share's `marks` file), and the closing report.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Guest } from '../../scripts/qemu/boot.ts';

export type Marks = Map<string, number>;

export function readMarks(share: string): Marks {
  const file = join(share, 'marks');
  const marks: Marks = new Map();
  if (!existsSync(file)) return marks;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, t] = line.trim().split(/\s+/);
    if (name && t && Number.isFinite(Number(t))) marks.set(name, Number(t));
  }
  return marks;
}

function guestFailure(share: string): string | undefined {
  const f = join(share, 'failed');
  if (!existsSync(f)) return undefined;
  const log = existsSync(join(share, 'guest.log')) ? readFileSync(join(share, 'guest.log'), 'utf8') : '';
  return `guest: ${readFileSync(f, 'utf8').trim()}\n--- guest.log (tail) ---\n${log.slice(-3000)}`;
}

/** Waits for a guest mark; fails at once with the guest's own message if the scenario failed. */
export async function waitForMark(
  guest: Guest,
  share: string,
  name: string,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = readMarks(share).get(name);
    if (t !== undefined) return t;
    const failed = guestFailure(share);
    if (failed) throw new Error(`waiting for "${name}": ${failed}`);
    if (existsSync(join(share, 'scenario.rc')))
      throw new Error(
        `guest scenario ended without "${name}"\n${(existsSync(join(share, 'guest.log')) ? readFileSync(join(share, 'guest.log'), 'utf8') : '').slice(-3000)}`,
      );
    if (Date.now() > deadline)
      throw new Error(
        `guest mark "${name}" not reached in ${timeoutMs} ms\nconsole tail:\n${guest.console().slice(-1500)}`,
      );
    await Promise.race([guest.exited.then(() => undefined), new Promise((r) => setTimeout(r, 250))]);
    if (guest.proc.exitCode !== null && readMarks(share).get(name) === undefined && !guestFailure(share)) {
      throw new Error(
        `QEMU exited (${guest.proc.exitCode}) before "${name}"\nconsole tail:\n${guest.console().slice(-1500)}`,
      );
    }
  }
}

export class Phases {
  private readonly started = new Map<string, number>();
  readonly done: { name: string; ms: number }[] = [];

  start(name: string): void {
    this.started.set(name, Date.now());
    console.error(`[arm] phase ${name} ...`);
  }

  end(name: string): number {
    const ms = Date.now() - (this.started.get(name) ?? Date.now());
    this.done.push({ name, ms });
    console.error(`[arm] phase ${name}: ${(ms / 1000).toFixed(1)} s`);
    return ms;
  }

  async run<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    this.start(name);
    try {
      return await fn();
    } finally {
      this.end(name);
    }
  }

  report(figures: Record<string, string | number>, marks: Marks): string {
    const lines = ['', '=== QEMU arm64 board test report', 'host phases:'];
    for (const p of this.done) lines.push(`  ${p.name.padEnd(40)} ${(p.ms / 1000).toFixed(1)} s`);
    if (marks.size > 0) {
      lines.push('guest marks (guest uptime, s; delta from the previous mark):');
      let prev: number | undefined;
      for (const [name, t] of marks) {
        lines.push(
          `  ${name.padEnd(40)} ${t.toFixed(2).padStart(8)}  ${prev === undefined ? '' : `+${(t - prev).toFixed(2)}`}`,
        );
        prev = t;
      }
    }
    lines.push('figures:');
    for (const [k, v] of Object.entries(figures)) lines.push(`  ${k}: ${v}`);
    return lines.join('\n');
  }
}
