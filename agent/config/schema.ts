/**
 * The one config schema: every key, its type, its default and its description. docs/config.md is
 * generated from it (`npm run docs:config`; a test keeps the two in sync).
 * Sections live in ./sections, one per service; this file only composes them.
 * Must never read files or the environment (that is load.ts).
 */
import { z } from 'zod';
import { CONFIG_VERSION } from './migrations.ts';
import { cameraSection } from './sections/camera.ts';
import { cloudSection } from './sections/cloud.ts';
import { eventsSection } from './sections/events.ts';
import { gateSection } from './sections/gate.ts';
import { grantsSection } from './sections/grants.ts';
import { identitySection } from './sections/identity.ts';
import { ownerSection } from './sections/owner.ts';
import { ledSection, privacySection } from './sections/hardware.ts';
import { streamSection } from './sections/stream.ts';
import { telemetrySection } from './sections/telemetry.ts';
import { uploadsSection } from './sections/uploads.ts';

export const configSchema = z
  .object({
    version: z
      .literal(CONFIG_VERSION)
      .default(CONFIG_VERSION)
      .describe(
        'Config format version. A file without it is version 0; older versions are migrated at load (reported by `lenscap config check` and in the log), a newer one is refused.',
      ),
    serial: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')
      .optional()
      .describe(
        'Expected serial. Optional: the serial is the CN of the device certificate; when set, the agent refuses to start if they differ.',
      ),
    stateDir: z
      .string()
      .min(1)
      .default('/var/lib/lenscap')
      .describe(
        'Directory holding the identity (key 0600, dir 0700), trust material, replay cache, audit log and event queue.',
      ),
    log: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .describe('Minimum log level.'),
        pretty: z.boolean().default(false).describe('Human-readable lines instead of JSON (development).'),
      })
      .strict()
      .prefault({})
      .describe('Logging.'),
    identity: identitySection,
    grants: grantsSection,
    owner: ownerSection,
    cloud: cloudSection,
    gate: gateSection,
    stream: streamSection,
    camera: cameraSection,
    privacy: privacySection,
    led: ledSection,
    telemetry: telemetrySection,
    events: eventsSection,
    uploads: uploadsSection,
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
/** What a config file may contain (everything optional where a default exists). */
export type ConfigInput = z.input<typeof configSchema>;

/** Keys whose values are redacted when the resolved config is printed. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(['cloud.password']);
