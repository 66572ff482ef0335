import { z } from 'zod';

export const gateSection = z
  .object({
    host: z
      .string()
      .default('0.0.0.0')
      .describe("Address the viewer gate listens on (the camera's only media port)."),
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(8443)
      .describe('Port of the viewer gate (0 = any free port).'),
    tls: z
      .boolean()
      .default(true)
      .describe('Serve HTTPS with the device certificate so a viewer can check it reached the right camera.'),
    allowQueryToken: z
      .boolean()
      .default(false)
      .describe('Accept `?grant=` in the URL (tokens in URLs leak into logs).'),
    viewerOrigins: z.array(z.string()).default([]).describe('Origins allowed by CORS (browser viewers).'),
    seal: z
      .boolean()
      .default(false)
      .describe(
        "Seal direct viewing too: frames leave the gate encrypted to the viewer's key in the owner-signed membership (a viewer without one is refused `viewer_key_missing`). Off by default: on a LAN the gate's TLS already ends at the viewer, with nobody in between (see docs/streaming.md).",
      ),
    maxViewers: z.number().int().positive().default(8).describe('Concurrent viewer sessions.'),
    firstKeyframeTimeoutSeconds: z
      .number()
      .positive()
      .max(300)
      .default(20)
      .describe(
        'An accepted viewer waits at most this long for the first keyframe; then (or as soon as capture fails twice in a row) it gets 503 `no_media` / `capture_failed` with the camera error code instead of a response head.',
      ),
    refusalRateLimit: z
      .object({
        perMinute: z
          .number()
          .int()
          .positive()
          .default(60)
          .describe('Refusals per address per minute before the address is answered 429.'),
      })
      .strict()
      .prefault({})
      .describe('Per-address limit on refused requests.'),
  })
  .strict()
  .prefault({})
  .describe('Viewer gate: HTTP-FLV and WebSocket-FLV behind grant verification.');
