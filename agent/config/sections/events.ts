import { z } from 'zod';

const rect = z
  .object({
    x: z.number().min(0).max(1).describe('Left edge, fraction of the picture width.'),
    y: z.number().min(0).max(1).describe('Top edge, fraction of the picture height.'),
    w: z.number().gt(0).max(1).describe('Width, fraction of the picture width.'),
    h: z.number().gt(0).max(1).describe('Height, fraction of the picture height.'),
  })
  .strict();

export const eventsSection = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Motion events (snapshot + clip, sealed to the membership). Off: no analysis process runs. The owner's `cmd/events` switch, once sent, is saved in the state directory (`events/switch.json`) and wins over this value across restarts; a local factory reset forgets it.",
      ),
    analysisFps: z
      .number()
      .int()
      .min(1)
      .max(15)
      .default(5)
      .describe('Frames per second the motion detector analyses (a downscaled gray copy).'),
    analysisWidth: z
      .number()
      .int()
      .min(16)
      .max(320)
      .default(64)
      .describe('Width of the analysed gray frame.'),
    analysisHeight: z
      .number()
      .int()
      .min(12)
      .max(240)
      .default(48)
      .describe('Height of the analysed gray frame.'),
    pixelThreshold: z
      .number()
      .int()
      .min(1)
      .max(255)
      .default(25)
      .describe('A pixel changed when its gray level moved by at least this much since the last frame.'),
    minChangedPercent: z
      .number()
      .gt(0)
      .max(100)
      .default(2)
      .describe('Motion when at least this share of the watched pixels changed.'),
    cooldownSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(10)
      .describe('After an event ends, no new event starts for this long.'),
    zones: z
      .array(rect)
      .max(16)
      .default([])
      .describe('Only these rectangles are watched (empty = the whole picture).'),
    masks: z
      .array(rect)
      .max(16)
      .default([])
      .describe('These rectangles are never watched (applied after zones).'),
    preRollSeconds: z
      .number()
      .min(0)
      .max(10)
      .default(3)
      .describe('Clip starts this long before the trigger (from the in-memory ring).'),
    postRollSeconds: z
      .number()
      .min(0)
      .max(60)
      .default(5)
      .describe('Clip continues this long after motion ends.'),
    maxClipSeconds: z
      .number()
      .min(1)
      .max(300)
      .default(30)
      .describe('Longest clip; recording stops here even if motion goes on.'),
    ringMaxBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024)
      .describe('Memory cap of the pre-roll ring of recent GOPs (oldest GOPs dropped first).'),
  })
  .strict()
  .prefault({})
  .describe('Motion events: detection, the pre-roll ring, snapshots and clips (docs/events.md).');
