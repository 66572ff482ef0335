/** The factory reset input contract: a button that reports one press (held long enough). */
export interface ResetInput {
  readonly name: string;
  /** Calls back once per completed press until the returned stop function is called. */
  watch(onPress: () => void): () => void;
}
