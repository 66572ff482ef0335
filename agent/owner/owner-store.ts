/**
 * The owner-held trust on disk: one versioned file (`owner/state.json`, 0600) written crash-safely
 * in one atomic replacement, so a power cut leaves either the old owner and membership or the new
 * ones, never half of each. The claim secret sits beside it (`owner/claim-secret`, 0600).
 * Must never write anything that did not verify (callers verify first) and never leave a torn file.
 */
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { z } from 'zod';
import { LenscapError } from '../errors.ts';
import type { StateLayout } from '../state-layout.ts';
import { fsyncDir, writeFileAtomic } from '../storage/atomic-file.ts';
import { parseClaimCode } from './claim-code.ts';

export const OWNER_STATE_FORMAT = 1;

const stateSchema = z
  .object({
    format: z.literal(OWNER_STATE_FORMAT),
    /** The nonce of the claim that made this owner: memberships of earlier claims are dead. */
    epoch: z.string().min(8).max(128),
    claimedAt: z.string(),
    /** The key that signed `membership` (the owner before it, or the owner itself). */
    signer: z.record(z.string(), z.unknown()),
    membership: z
      .string()
      .min(1)
      .max(64 * 1024),
    /** Highest membership version installed in this epoch: the next must be higher. */
    floor: z.number().int().positive(),
    /**
     * Which claim of this camera made this owner (1, 2, … — counted in trust/floors.json as
     * `owner_claim`). Absent in files written before the floors moved there: read as 1.
     */
    claimSeq: z.number().int().positive().optional(),
  })
  .strict();

export type OwnerState = z.infer<typeof stateSchema>;

/** The installed state, undefined when the camera is not claimed. Throws ERR_OWNER_STATE_INVALID. */
export function readOwnerState(paths: StateLayout): OwnerState | undefined {
  if (!existsSync(paths.ownerState)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(paths.ownerState, 'utf8'));
  } catch (err) {
    throw new LenscapError('ERR_OWNER_STATE_INVALID', `owner state unreadable: ${(err as Error).message}`);
  }
  const r = stateSchema.safeParse(raw);
  if (!r.success)
    throw new LenscapError(
      'ERR_OWNER_STATE_INVALID',
      `owner state: ${r.error.issues[0]?.path.join('.') ?? ''} ${r.error.issues[0]?.message ?? ''}`,
    );
  return r.data;
}

export function writeOwnerState(paths: StateLayout, state: OwnerState): void {
  mkdirSync(paths.ownerDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(paths.ownerState, JSON.stringify(state), 0o600);
}

/** Factory reset: the owner and membership are gone (the claim secret stays: it is on the label). */
export function clearOwnerState(paths: StateLayout): boolean {
  if (!existsSync(paths.ownerState)) return false;
  unlinkSync(paths.ownerState);
  fsyncDir(paths.ownerDir);
  return true;
}

/** The claim secret's bytes, or undefined on a camera provisioned before claim codes existed. */
export function readClaimSecret(paths: StateLayout): Buffer | undefined {
  if (!existsSync(paths.claimSecret)) return undefined;
  return parseClaimCode(readFileSync(paths.claimSecret, 'utf8'));
}

export function writeClaimSecret(paths: StateLayout, code: string): void {
  parseClaimCode(code);
  mkdirSync(paths.ownerDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(paths.claimSecret, `${code}\n`, 0o600);
}
