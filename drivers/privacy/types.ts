/** The hardware privacy switch contract: a position read by polling, reported on change. */
export interface PrivacySwitch {
  readonly name: string;
  /** Current position: true = privacy on. Unreadable switches read as on (fail closed). */
  read(): boolean;
  /** Calls back on every change until the returned stop function is called. */
  watch(onChange: (on: boolean) => void): () => void;
}

/**
 * The interval timers a polled switch runs on (structurally the agent's `Time` seam, which drivers
 * do not import): the system's by default, harness/test-clock.ts in tests.
 */
export interface PollTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}
