import { z } from 'zod';

export const identitySection = z
  .object({
    renewWhenRemainingDays: z
      .number()
      .positive()
      .default(30)
      .describe('Renew the device certificate when less than this many days of validity remain.'),
    renewUrl: z
      .string()
      .url()
      .optional()
      .describe(
        'HTTPS URL of the renewal endpoint (mTLS with the current cert). Defaults to the URL used at provisioning.',
      ),
    renewCheckIntervalHours: z
      .number()
      .positive()
      .default(12)
      .describe('How often the agent checks whether renewal is due.'),
  })
  .strict()
  .prefault({})
  .describe('Device identity (key, certificate) checks and renewal.');
