/**
 * Structured JSON logs (pino) bound to the device serial; a human-readable mode for development.
 * Every string in a line (message, fields, child bindings) goes through agent/redact.ts, so a URL's
 * query, userinfo or stream-key path, or a registered secret, never reaches the log whole.
 * Must never log a token, key or certificate whole: use `redactToken` for anything grant-shaped.
 */
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import { redactText, redactValue } from './redact.ts';

export type { Logger };

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  serial?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read lines back. */
  destination?: NodeJS.WritableStream;
  /** Finds the pretty printer (tests inject one that finds none, as on a device bundle). */
  loadPretty?: () => ((o: Record<string, unknown>) => pino.DestinationStream) | undefined;
}

/** `log.pretty` asked for on a tree without pino-pretty is said once per process, not per logger. */
let prettyMissingSaid = false;

export function createLogger(opts: LogOptions = {}): Logger {
  const base = opts.serial ? { serial: opts.serial } : {};
  const options = {
    level: opts.level ?? 'info',
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['token', 'grant', '*.token', '*.grant', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
    formatters: {
      bindings: (b: Record<string, unknown>) => redactValue(b),
      log: (o: Record<string, unknown>) => redactValue(o),
    },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? redactText(a) : a)),
        );
      },
    },
  };
  const pretty = opts.pretty ? (opts.loadPretty ?? loadPretty)() : undefined;
  if (pretty && !opts.destination)
    return redactingChildren(
      pino(
        options,
        pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
      ),
    );
  const logger = redactingChildren(
    pino(options, (opts.destination ?? process.stdout) as pino.DestinationStream),
  );
  if (opts.pretty && !pretty && !prettyMissingSaid) {
    prettyMissingSaid = true;
    logger.warn(
      { code: 'LOG_PRETTY_UNAVAILABLE' },
      'log.pretty is true but no pretty printer is installed (a device bundle ships none): logging JSON',
    );
  }
  return logger;
}

/**
 * pino's formatters do not see a child's bindings (`log.child({relay: url})`), so every child, and
 * every child of a child, gets its bindings redacted on the way in.
 */
function redactingChildren(logger: Logger): Logger {
  const child = logger.child.bind(logger);
  logger.child = ((bindings: pino.Bindings, options?: pino.ChildLoggerOptions) =>
    redactingChildren(child(redactValue(bindings), options))) as unknown as Logger['child'];
  return logger;
}

/** pino-pretty is a dev dependency: the device bundle logs JSON even if asked for pretty. */
function loadPretty(): ((o: Record<string, unknown>) => pino.DestinationStream) | undefined {
  try {
    const require = createRequire(import.meta.url);
    return require('pino-pretty') as (o: Record<string, unknown>) => pino.DestinationStream;
  } catch {
    return undefined;
  }
}

/** A logger that drops everything: for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Enough of a token to correlate log lines (first 8 chars + length), never enough to replay it. */
export function redactToken(token: string | undefined | null): string {
  if (!token) return '(none)';
  return `${token.slice(0, 8)}…(${token.length} chars)`;
}
