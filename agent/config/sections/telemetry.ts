import { z } from 'zod';

export const telemetrySection = z
  .object({
    intervalSeconds: z.number().int().min(5).default(60).describe('Telemetry period.'),
  })
  .strict()
  .prefault({})
  .describe('Health telemetry.');
