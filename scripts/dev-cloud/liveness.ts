/**
 * Which cameras the cloud should now call offline although no `{"online":false}` arrived: those it
 * has not heard from (state, telemetry, events or replies) for `staleAfterMs`. A last will does not
 * always come: RabbitMQ loses it when the broker node holding the connection dies, and any broker
 * loses it with the broker itself. Pure: time is passed in.
 * Must never call a camera offline that spoke within the window, nor one already offline again.
 */

export interface Heard {
  serial: string;
  online: boolean;
  /** ms since the epoch of the last message from this camera. */
  lastHeardMs?: number;
}

/** Serials to mark offline at `nowMs`; `staleAfterMs` 0 turns the check off. */
export function silentCameras(cams: Iterable<Heard>, nowMs: number, staleAfterMs: number): string[] {
  if (!(staleAfterMs > 0)) return [];
  const out: string[] = [];
  for (const c of cams)
    if (c.online && c.lastHeardMs !== undefined && nowMs - c.lastHeardMs > staleAfterMs) out.push(c.serial);
  return out;
}
