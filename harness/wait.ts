/**
 * Bounded waits for tests. A test that awaits an event, a child or a socket with no bound hangs
 * the whole run when the thing never happens (a missing program, a refused connection); these
 * fail instead, after `ms`, with a message naming what was awaited.
 * Must never: leave a timer or a listener behind once the wait is over.
 */
import type { EventEmitter } from 'node:events';

/** `p`, or a rejection "timed out after N ms waiting for WHAT" when it takes longer than `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The first argument of the next `event` on `emitter`, bounded. Start it before the action that
 * triggers the event (the bound runs from this call).
 */
export function onceWithin<T = unknown>(
  emitter: Pick<EventEmitter, 'once' | 'off'>,
  event: string,
  ms: number,
  what = `the '${event}' event`,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onEvent = (v: T) => {
      clearTimeout(timer);
      resolve(v);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    emitter.once(event, onEvent);
  });
}
