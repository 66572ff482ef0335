/**
 * Every `lenscap` verb, in the order `lenscap --help` lists them: device verbs only. Development
 * verbs (the dev cloud, tokens, grants, bindings) live in the `lenscap-dev` bin under scripts/,
 * which device code never imports. Verbs are loaded lazily so a verb's dependencies load only
 * when it runs.
 */
import type { Command } from './command.ts';

type Loader = { name: string; summary: string; load: () => Promise<Command> };

export const commands: Loader[] = [
  { name: 'run', summary: 'Run the agent.', load: async () => (await import('./run.ts')).runCommand },
  {
    name: 'config check',
    summary: 'Validate a config file and print the resolved config.',
    load: async () => (await import('./config-check.ts')).configCheckCommand,
  },
  {
    name: 'provision',
    summary: 'Give this camera its identity (factory or field).',
    load: async () => (await import('./provision.ts')).provisionCommand,
  },
  {
    name: 'reset',
    summary: 'Factory reset: forget the owner (root only; takes effect at once).',
    load: async () => (await import('./reset.ts')).resetCommand,
  },
  {
    name: 'grant inspect',
    summary: 'Decode a grant and show every check.',
    load: async () => (await import('./grant-inspect.ts')).grantInspectCommand,
  },
];
