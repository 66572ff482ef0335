/**
 * Every `lenscap-dev` verb, in the order `lenscap-dev --help` lists them. With no verb,
 * `lenscap-dev` runs the development cloud itself (serve.ts). Development only: nothing here is
 * compiled into a device build (tsconfig.build.json covers agent/ and drivers/ only).
 * Must never be imported from agent/ or drivers/.
 */
import type { Command } from '../../../agent/cli/command.ts';

type Loader = { name: string; summary: string; load: () => Promise<Command> };

/** What `lenscap-dev [options]` runs when no verb is named. */
export const defaultCommand: Loader = {
  name: '',
  summary: 'Run the local development cloud (no verb).',
  load: async () => (await import('./serve.ts')).devCloudCommand,
};

export const devCommands: Loader[] = [
  {
    name: 'token',
    summary: 'Print a one-time provisioning token.',
    load: async () => (await import('./token.ts')).devCloudTokenCommand,
  },
  {
    name: 'grant',
    summary: 'Mint a viewer grant (prints the token alone).',
    load: async () => (await import('./grant.ts')).devCloudGrantCommand,
  },
  {
    name: 'view',
    summary: 'Mint a key-bound grant and print it with its DPoP proof (the exact request).',
    load: async () => (await import('./view.ts')).devViewCommand,
  },
  {
    name: 'claim',
    summary: "Claim a camera with its label code, as the user's simulated phone.",
    load: async () => (await import('./claim.ts')).devClaimCommand,
  },
  {
    name: 'member add',
    summary: "Add a viewer to a camera's membership, signed by the owner's simulated phone.",
    load: async () => (await import('./member.ts')).devMemberAddCommand,
  },
  {
    name: 'member remove',
    summary: "Remove a viewer from a camera's membership, signed by the owner's simulated phone.",
    load: async () => (await import('./member.ts')).devMemberRemoveCommand,
  },
  {
    name: 'member transfer',
    summary: "Transfer a camera's ownership to another user's key, signed by the owner's simulated phone.",
    load: async () => (await import('./member.ts')).devMemberTransferCommand,
  },
  {
    name: 'bind',
    summary: 'Sign a binding record (claims a camera for an owner).',
    load: async () => (await import('./bind.ts')).devCloudBindCommand,
  },
];
