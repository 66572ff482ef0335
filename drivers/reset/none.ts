/** No reset button on this board: `lenscap reset` (root) is the only local reset. */
import type { ResetInput } from './types.ts';

export function createNoResetInput(): ResetInput {
  return { name: 'none', watch: () => () => undefined };
}
