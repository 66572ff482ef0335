import { z } from 'zod';

export const grantsSection = z
  .object({
    issuer: z.string().min(1).default('https://cloud.lenscap.dev').describe('Required `iss` of every grant.'),
    algorithms: z
      .array(z.enum(['EdDSA', 'ES256']))
      .min(1)
      .default(['EdDSA'])
      .describe('Allowed JWS algorithms. `none` and HMAC algorithms are never allowed.'),
    maxLifetimeSeconds: z
      .number()
      .int()
      .positive()
      .max(86400)
      .default(600)
      .describe('Largest allowed `exp - iat`.'),
    clockToleranceSeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(30)
      .describe(
        'Leeway for `nbf` and `iat` (a cloud clock running ahead). `exp` is a hard edge, never softened.',
      ),
    maxTokenBytes: z
      .number()
      .int()
      .min(256)
      .max(65536)
      .default(4096)
      .describe('Grants longer than this are refused as `too_large` before any parsing.'),
    replayCacheMaxEntries: z
      .number()
      .int()
      .positive()
      .default(10000)
      .describe('Bound on remembered grant ids (`jti`).'),
  })
  .strict()
  .prefault({})
  .describe('Viewer grant verification.');
