/**
 * One artifact's way out, in the order that makes a crash harmless: ask the cloud for a presigned
 * URL → PUT the sealed bytes → publish the metadata on `motion` (QoS 1, PUBACK awaited). The queue
 * deletes the sealed file only after all three; a crash in between repeats them for the same id and
 * object key, which overwrites the object with the same bytes and repeats the same metadata.
 * Must never publish metadata for an artifact whose PUT did not succeed.
 */
import type { Clock } from '../clock.ts';
import { LenscapError, isLenscapError } from '../errors.ts';
import type { SealedArtifact } from '../events/artifact.ts';
import { putArtifact } from './put.ts';
import type { Transfer } from './queue.ts';
import type { UploadUrlClient } from './upload-url.ts';

/** What `lenscap/v1/<serial>/motion` carries for one uploaded artifact. Never a key or plaintext. */
export interface MotionMetadata {
  v: 1;
  id: string;
  eventId: string;
  kind: SealedArtifact['kind'];
  serial: string;
  startedAt: number;
  durationMs: number;
  /** Sealed bytes stored. */
  size: number;
  /** Hex SHA-256 of the sealed bytes (what the store checked). */
  sha256: string;
  /** What the sealed bytes hold once opened. */
  contentType: SealedArtifact['contentType'];
  /** Key ids of the membership viewer keys the content key is wrapped to. */
  sealedTo: string[];
  membershipVersion: number;
  /** The object key in the store. */
  key: string;
  uploadedAt: number;
}

export interface TransferDeps {
  urls: Pick<UploadUrlClient, 'request'>;
  uploadHost: string | undefined;
  ca: Buffer | undefined;
  putTimeoutMs: number;
  publishMotion(meta: MotionMetadata): Promise<void>;
  clock: Clock;
}

export function createTransfer(deps: TransferDeps): Transfer {
  return async (a, signal) => {
    if (!deps.uploadHost)
      throw new LenscapError('ERR_UPLOAD_NOT_CONFIGURED', 'uploads.host is not set: artifacts stay queued');
    const target = await deps.urls.request(a, signal);
    if (target.expiresAt <= deps.clock.now())
      throw new LenscapError(
        'ERR_UPLOAD_URL_EXPIRED',
        'the cloud handed out an upload URL that has already expired',
      );
    await putArtifact({
      url: target.url,
      artifact: a,
      uploadHost: deps.uploadHost,
      ...(deps.ca ? { ca: deps.ca } : {}),
      timeoutMs: deps.putTimeoutMs,
      signal,
    });
    const meta: MotionMetadata = {
      v: 1,
      id: a.id,
      eventId: a.eventId,
      kind: a.kind,
      serial: a.serial,
      startedAt: a.startedAt,
      durationMs: a.durationMs,
      size: a.size,
      sha256: a.sha256,
      contentType: a.contentType,
      sealedTo: a.sealedTo,
      membershipVersion: a.membershipVersion,
      key: target.key,
      uploadedAt: deps.clock.now(),
    };
    try {
      await deps.publishMotion(meta);
    } catch (err) {
      if (isLenscapError(err) && err.code === 'ERR_CLOUD_OFFLINE') throw err;
      throw new LenscapError(
        'ERR_UPLOAD_PUBLISH',
        'the metadata was not acknowledged by the broker',
        undefined,
        {
          cause: err,
        },
      );
    }
  };
}
