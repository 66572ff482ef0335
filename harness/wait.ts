/**
 * Bounded waits for tests and benches. A test that awaits an event, a child, a socket or a condition
 * with no bound hangs the whole run when the thing never happens (a missing program, a refused
 * connection); these fail instead, after `ms`, with a message naming what was awaited.
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

export interface WaitUntilOptions {
  /** Pause between two looks (default 50 ms). */
  stepMs?: number;
  /** What to add to the timeout message (a log tail, the state seen last). */
  detail?: () => string;
}

/**
 * The one polling wait: calls `cond` (sync or async) until it returns something truthy and resolves
 * with that value; rejects "timed out after N ms waiting for WHAT" once `ms` have passed without
 * it. A `cond` that throws fails the wait at once (a broken probe is not "not yet").
 * Benches that only want to know use `.then(() => true, () => false)`.
 */
export async function waitUntil<T>(
  cond: () => T | Promise<T>,
  ms: number,
  what: string,
  opts: WaitUntilOptions = {},
): Promise<NonNullable<T>> {
  const step = opts.stepMs ?? 50;
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() >= deadline) {
      const more = opts.detail ? `\n${opts.detail()}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${more}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(step, Math.max(1, deadline - Date.now()))));
  }
}

/** {@link waitUntil} as a yes/no, for benches and runs that report a miss rather than fail on it. */
export function reached(cond: () => unknown, ms: number, opts: WaitUntilOptions = {}): Promise<boolean> {
  return waitUntil(cond, ms, 'a condition', opts).then(
    () => true,
    () => false,
  );
}

/**
 * {@link waitUntil} on a growing text (a child's stdout, a log file): the first match of `re`; on
 * timeout the message carries the text's last 1,500 characters.
 */
export function waitForOutput(
  get: () => string,
  re: RegExp,
  ms: number,
  what = `output matching ${re}`,
  opts: WaitUntilOptions = {},
): Promise<RegExpExecArray> {
  return waitUntil(() => re.exec(get()), ms, what, { detail: () => `got:\n${get().slice(-1500)}`, ...opts });
}

/**
 * A bounded window in which the test proves that nothing happens (no byte after the cut, no second
 * upload, no answer before the bound): the only fixed real-time pause a test should need. `why`
 * names what must not happen, so each remaining real-time wait is named and countable
 * (`grep -rn "quietFor(" test harness`). A window that only waits for something to happen is a
 * {@link waitUntil}; code on the Time seam is driven by harness/test-clock.ts instead.
 */
export function quietFor(ms: number, why: string): Promise<void> {
  if (!why) throw new Error('quietFor: say what must not happen in the window');
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A bounded real-time span a real child (ffmpeg, a relay) needs to produce media for the test to
 * measure (motion that lasts 1.5 s of frames, a pause between two pushes): real media runs on the
 * wall clock, not on the Time seam. `why` names what the span is for; counted like {@link quietFor}.
 */
export function holdFor(ms: number, why: string): Promise<void> {
  if (!why) throw new Error('holdFor: say what the span is for');
  return new Promise((r) => setTimeout(r, ms));
}
