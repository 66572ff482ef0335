/**
 * When this agent was built (ms since the epoch). A camera without an RTC boots in 1970; a clock
 * earlier than the build time cannot be trusted to judge `exp`, so every grant is refused as
 * `clock_untrusted` until the clock is set. `npm run build` rewrites the value in dist/.
 */
export const BUILD_TIME_MS: number = Date.parse('2026-11-01T00:00:00Z');
