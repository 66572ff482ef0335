import { z } from 'zod';

export const streamSection = z
  .object({
    mode: z
      .enum(['on-demand', 'always'])
      .default('on-demand')
      .describe('Run capture only while someone watches, or always.'),
    idleStopSeconds: z
      .number()
      .min(0)
      .default(30)
      .describe('On demand: stop capture this long after the last viewer left.'),
    ffmpegPath: z
      .string()
      .optional()
      .describe('ffmpeg binary. Else FFMPEG_PATH, else `ffmpeg` on PATH, else @ffmpeg-installer/ffmpeg.'),
    relayAllowList: z
      .array(z.string())
      .default([])
      .describe('Push mode: relay URL prefixes allowed (empty = any rtmp(s) URL in a signed grant).'),
  })
  .strict()
  .prefault({})
  .describe('Capture pipeline and internal media hub (in process, no listener).');
