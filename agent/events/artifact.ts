/**
 * The contract between the camera's event side (agent/events/: motion, ring, snapshot and clip,
 * sealing) and the upload side (agent/uploads/: queue, presigned PUT, motion metadata). The events
 * side writes the sealed bytes crash-safe to `<state dir>/events/spool/<id>.sealed`, then hands
 * this record to `ArtifactSink.enqueue`; from then on the sink owns the file (it deletes it after
 * upload or when it drops it).
 * Must never carry plaintext media, a content key or a private key: only what the metadata topic
 * may publish plus the path of the already-sealed file.
 */
export type ArtifactKind = 'snapshot' | 'clip';

export interface SealedArtifact {
  v: 1;
  /** Unique and url-safe: `<serial>-<eventId>-snap` or `<serial>-<eventId>-clip`. */
  id: string;
  eventId: string;
  kind: ArtifactKind;
  serial: string;
  /** ms epoch from the injected clock (the trigger for a snapshot, the clip's first frame). */
  startedAt: number;
  /** 0 for snapshots. */
  durationMs: number;
  /** Sealed bytes on disk. */
  size: number;
  /** Lower-case hex SHA-256 of the sealed bytes. */
  sha256: string;
  contentType: 'image/jpeg' | 'video/mp4';
  /** Key ids (JWK thumbprints) of the membership viewer keys the content key is wrapped to. */
  sealedTo: string[];
  membershipVersion: number;
  /** Absolute path of the sealed file (`<state dir>/events/spool/<id>.sealed`). */
  path: string;
}

export interface ArtifactSink {
  enqueue(a: SealedArtifact): Promise<void>;
}
