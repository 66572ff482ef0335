/**
 * Every `lenscap` verb, in the order `lenscap --help` lists them. Verbs are loaded lazily, so the
 * device never imports development-only code (the dev cloud) unless that verb runs.
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
    name: 'grant inspect',
    summary: 'Decode a grant and show every check.',
    load: async () => (await import('./grant-inspect.ts')).grantInspectCommand,
  },
  {
    name: 'dev-cloud',
    summary: 'Run the local development cloud.',
    load: async () => (await import('./dev-cloud.ts')).devCloudCommand,
  },
  {
    name: 'dev-cloud token',
    summary: 'Print a one-time provisioning token.',
    load: async () => (await import('./dev-cloud-token.ts')).devCloudTokenCommand,
  },
  {
    name: 'dev-cloud grant',
    summary: 'Mint a viewer grant (prints the token alone).',
    load: async () => (await import('./dev-cloud-grant.ts')).devCloudGrantCommand,
  },
  {
    name: 'dev-cloud bind',
    summary: 'Sign a binding record (claims a camera for an owner).',
    load: async () => (await import('./dev-cloud-bind.ts')).devCloudBindCommand,
  },
];
