import { z } from 'zod';

export const ownerSection = z
  .object({
    mode: z
      .enum(['owner-held', 'legacy'])
      .default('owner-held')
      .describe(
        'owner-held: the camera accepts a claim with its label code; once claimed, only the owner-signed membership decides who may view, and grants must be key-bound (DPoP). Until claimed, a cloud-signed binding record keeps working. legacy: claims are refused and the cloud-signed binding decides.',
      ),
    claimNonceTtlSeconds: z
      .number()
      .int()
      .min(10)
      .max(3600)
      .default(300)
      .describe('How long a claim nonce (cmd/claim.nonce) stays usable; each is single-use.'),
    lockout: z
      .object({
        freeAttempts: z
          .number()
          .int()
          .min(0)
          .max(20)
          .default(3)
          .describe('Wrong claim proofs before the lockout starts.'),
        baseSeconds: z
          .number()
          .int()
          .min(1)
          .default(30)
          .describe('First lockout; each further failure doubles it.'),
        maxSeconds: z.number().int().min(1).default(3600).describe('Longest lockout.'),
      })
      .strict()
      .prefault({})
      .describe('Growing lockout after wrong claim proofs.'),
    dpopWindowSeconds: z
      .number()
      .int()
      .min(5)
      .max(600)
      .default(60)
      .describe('A DPoP proof is accepted while its iat is within this many seconds of the camera clock.'),
    resetInput: z
      .object({
        driver: z.enum(['none', 'sysfs-gpio']).default('none').describe('Factory reset button.'),
        path: z.string().optional().describe('sysfs GPIO value file of the reset button.'),
        activeLow: z.boolean().default(true).describe('Button reads 0 while pressed.'),
        holdMs: z.number().int().min(0).default(5000).describe('How long the button must be held.'),
        pollMs: z.number().int().positive().default(100).describe('Poll interval.'),
      })
      .strict()
      .prefault({})
      .describe('Local factory reset input (clears the owner; `lenscap reset` does the same).'),
  })
  .strict()
  .prefault({})
  .describe('Owner-held trust: claim with the label code, owner-signed membership, key-bound grants.');
