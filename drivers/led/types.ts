/** The status light contract: on while any viewer session or push is active. */
export interface StatusLed {
  readonly name: string;
  set(on: boolean): void;
}
