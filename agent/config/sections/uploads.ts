import { z } from 'zod';

/** host or host:port, no scheme, path or userinfo: what an upload URL's host must equal. */
const uploadHost = z
  .string()
  .max(255)
  .regex(
    /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$/,
    'a host name or address with an optional :port (no scheme, path or userinfo)',
  );

export const uploadsSection = z
  .object({
    host: uploadHost
      .optional()
      .describe(
        'The object store presigned upload URLs must point at (host or host:port; without a port, 443). A URL the cloud hands out for any other host, or not https, is refused (ERR_UPLOAD_URL_HOST / ERR_UPLOAD_URL_SCHEME). Unset: artifacts stay queued (within the queue bounds), nothing is uploaded or retried, and the agent says so once at start (ERR_UPLOAD_NOT_CONFIGURED).',
      ),
    ca: z
      .string()
      .min(1)
      .optional()
      .describe(
        "PEM file of the CA the object store's server certificate must chain to. Unset: the system store. No client certificate is sent (object stores take none).",
      ),
    maxBytes: z
      .number()
      .int()
      .positive()
      .default(256 * 1024 * 1024)
      .describe(
        'Bound on the sealed bytes waiting in the queue. Over it, the oldest clips are dropped first.',
      ),
    maxCount: z
      .number()
      .int()
      .positive()
      .default(2000)
      .describe('Bound on the artifacts waiting in the queue (same drop order).'),
    minFreeBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024 * 1024)
      .describe(
        "Free space to keep on the spool's filesystem: under it, queued artifacts are dropped (oldest clips first) so the disk never fills.",
      ),
    urlTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(120000)
      .default(15000)
      .describe('How long to wait for the cloud to answer an upload URL request.'),
    putTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(600000)
      .default(120000)
      .describe('Give up on one HTTPS PUT after this long (retried later).'),
    retry: z
      .object({
        baseMs: z.number().int().positive().default(2000).describe('First retry step.'),
        capMs: z.number().int().positive().default(300000).describe('Retry ceiling, applied before jitter.'),
      })
      .strict()
      .prefault({})
      .describe('Per-artifact retry: capped exponential backoff with full jitter, like the cloud link.'),
  })
  .strict()
  .prefault({})
  .describe(
    'The on-device queue of sealed event artifacts and their upload by HTTPS PUT to presigned object-store URLs (docs/events.md, "Upload and queue").',
  );
