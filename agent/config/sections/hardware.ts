import { z } from 'zod';

export const privacySection = z
  .object({
    enabled: z.boolean().default(false).describe('Start in privacy mode (no capture, every grant refused).'),
    switch: z
      .object({
        driver: z
          .enum(['none', 'sysfs-gpio'])
          .default('none')
          .describe('Hardware privacy switch. It wins over the cloud.'),
        path: z.string().optional().describe('sysfs GPIO value file, e.g. /sys/class/gpio/gpio17/value.'),
        activeLow: z.boolean().default(false).describe('Switch reads 0 when privacy is on.'),
        pollMs: z.number().int().positive().default(250).describe('Poll interval of the switch.'),
      })
      .strict()
      .prefault({})
      .describe('Hardware switch.'),
  })
  .strict()
  .prefault({})
  .describe('Privacy mode.');

export const ledSection = z
  .object({
    driver: z
      .enum(['none', 'sysfs'])
      .default('none')
      .describe('Status light: on while any viewer or push is active.'),
    name: z.string().optional().describe('LED name under /sys/class/leds.'),
    sysfsRoot: z.string().default('/sys').describe('sysfs root (tests point it at a fake tree).'),
  })
  .strict()
  .prefault({})
  .describe('Status light.');
