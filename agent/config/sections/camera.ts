import { z } from 'zod';

export const cameraSection = z
  .object({
    driver: z
      .enum(['auto', 'v4l2', 'testpattern'])
      .default('auto')
      .describe('`auto` uses v4l2 when a capture device exists, else the test pattern.'),
    device: z.string().default('/dev/video0').describe('V4L2 device.'),
    width: z.number().int().positive().default(640).describe('Capture width.'),
    height: z.number().int().positive().default(360).describe('Capture height.'),
    fps: z.number().int().positive().max(120).default(15).describe('Capture frame rate.'),
    gopSeconds: z
      .number()
      .positive()
      .max(2)
      .default(1)
      .describe('Keyframe interval (short, so joins are fast).'),
    bitrateKbps: z.number().int().positive().default(1500).describe('Target video bitrate when encoding.'),
    label: z.string().max(64).default('lenscap').describe('Test pattern: text drawn on the picture.'),
    color: z
      .string()
      .regex(/^[a-z]+$|^#[0-9a-fA-F]{6}$/)
      .default('white')
      .describe('Test pattern: label colour.'),
    testPatternMotionHook: z
      .boolean()
      .default(false)
      .describe(
        'Test pattern: a still picture with a block that moves while `<stateDir>/camera/testpattern-motion` holds text (motion on demand for tests and the demo; needs drawtext).',
      ),
  })
  .strict()
  .prefault({})
  .describe('Camera driver and capture mode.');
