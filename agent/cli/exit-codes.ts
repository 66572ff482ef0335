/**
 * The one exit-code scheme of every `lenscap` and `lenscap-dev` verb (README "Exit codes"):
 * 0 done, 1 failed (a coded error on stderr: ERR_…), 2 usage (unknown verb or option, missing
 * argument: ERR_CLI_USAGE), 3 a security refusal reported, not a failure of the tool (`grant
 * inspect` on a grant the camera would refuse). A process ended by a signal it did not handle
 * exits 128+N, as shells report it. Must never grow a verb-private code: add it here and document it.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const;
