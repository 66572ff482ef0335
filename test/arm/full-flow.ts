// Host side of the QEMU board test's stage 2 (the full flow). Filled in as the agent's pieces land.
import type { Guest } from '../../scripts/qemu/boot.ts';
import type { Phases } from './marks.ts';

export interface FullFlowHost {
  guestEnv: Record<string, string>;
  guestfwd: { host: number; guest: number }[];
  hostfwd: { host: number; guest: number }[];
  drive(guest: Guest, phases: Phases): Promise<{ figures: Record<string, string | number> }>;
  stop(): Promise<void>;
}

/** The verbs the full flow needs; a missing one is named so the failure says what is missing. */
const NEEDED_VERBS = ['run', 'provision', 'dev-cloud', 'dev-cloud token', 'dev-cloud grant'];

export async function missingFullFlowPieces(root: string): Promise<string[]> {
  const { commands } = await import('../../agent/cli/registry.ts');
  const missing: string[] = [];
  for (const name of NEEDED_VERBS) {
    const c = commands.find((x) => x.name === name);
    if (!c) {
      missing.push(`verb "${name}" (not in the registry)`);
      continue;
    }
    try {
      await c.load();
    } catch (err) {
      missing.push(`verb "${name}" (${(err as Error).message.split('\n')[0]})`);
    }
  }
  void root;
  return missing;
}

export async function runFullFlowHost(_opts: { root: string; share: string; log: (l: string) => void }): Promise<FullFlowHost> {
  throw new Error('stage 2 host side not written yet');
}
