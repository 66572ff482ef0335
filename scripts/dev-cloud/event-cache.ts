/**
 * The dev cloud's thumbnail "cache" in front of the object store, with the fault of the incident
 * on purpose: asked for a user's event thumbnails, a mixed-up cache hands back, for a share of
 * them, another user's thumbnail under the asker's name (`thumbnailsFor`, the incident replay's
 * figures); or, as the page's third incident button replays it, a cache key that forgot the user
 * answers the asker with another user's listing, thumbnails and clips (`mixedUpListing`). What it
 * serves is whatever the store holds: sealed artifacts, so a mix-up can only ever serve ciphertext.
 * Must never decrypt anything (it has no key) and never change the bytes it serves.
 */
import type { DevUploads, MotionRecord } from './uploads.ts';

export interface ServedThumbnail {
  /** The user who asked. */
  servedTo: string;
  /** The record of the artifact actually served (its camera's owner may be someone else). */
  record: MotionRecord;
  /** The owner of the camera that took it (the cache's own bookkeeping, for the replay's counts). */
  owner: string;
  bytes: Buffer;
}

export interface EventCacheOptions {
  uploads: Pick<DevUploads, 'motion' | 'fetch'>;
  /** Who owns a camera (the dev cloud's binding), undefined when unclaimed. */
  ownerOf(serial: string): string | undefined;
  /** Share of answers mixed up (0 = a correct cache). Every round(1/share)-th item is swapped. */
  mixUp: number;
}

export interface EventCache {
  thumbnailsFor(user: string): Promise<ServedThumbnail[]>;
}

export function createEventCache(opts: EventCacheOptions): EventCache {
  const every = opts.mixUp > 0 ? Math.max(1, Math.round(1 / opts.mixUp)) : 0;
  return {
    async thumbnailsFor(user) {
      const all = opts.uploads.motion().filter((r) => r.kind === 'snapshot');
      const mine = all.filter((r) => opts.ownerOf(r.serial) === user);
      const others = all.filter((r) => opts.ownerOf(r.serial) !== user);
      const out: ServedThumbnail[] = [];
      for (let i = 0; i < mine.length; i++) {
        // The fault: a cache key that forgot the user serves someone else's entry in its place.
        const swap = every > 0 && others.length > 0 && (i + 1) % every === 0;
        const record = swap ? others[i % others.length]! : mine[i]!;
        const bytes = await opts.uploads.fetch(record.key);
        if (!bytes) continue;
        out.push({ servedTo: user, record, owner: opts.ownerOf(record.serial) ?? '?', bytes });
      }
      return out;
    },
  };
}

/**
 * What a cache whose key forgot the user answers `user` with: the newest entries it cached for
 * other users' cameras (snapshots and clips), served under the asker's name. Pure.
 */
export function mixedUpListing(
  records: readonly MotionRecord[],
  user: string,
  ownerOf: (serial: string) => string | undefined,
  max = 40,
): MotionRecord[] {
  return records
    .filter((r) => {
      const owner = ownerOf(r.serial);
      return owner !== undefined && owner !== user;
    })
    .slice(-max)
    .reverse();
}
