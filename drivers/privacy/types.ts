/** The hardware privacy switch contract: a position read by polling, reported on change. */
export interface PrivacySwitch {
  readonly name: string;
  /** Current position: true = privacy on. Unreadable switches read as on (fail closed). */
  read(): boolean;
  /** Calls back on every change until the returned stop function is called. */
  watch(onChange: (on: boolean) => void): () => void;
}
