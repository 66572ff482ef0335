/**
 * The owner's events switch, kept across restarts: `cmd/events {enabled}` is applied at once and
 * saved crash-safe (temp file, fsync, rename, fsync dir) in `<state dir>/events/switch.json`; at
 * start a saved switch wins over config `events.enabled` (config is the installation's default,
 * the command is the owner's later word). A switch file that exists but cannot be read or parsed
 * means events OFF (fail closed: recording is what needs the owner's yes), logged with
 * ERR_EVENTS_COMMAND. A switch that cannot be saved is still applied now, and the command answers
 * ERR_EVENTS_COMMAND saying a restart would bring config's value back. A local factory reset
 * forgets the switch (the next owner starts from config, not from the last owner's choice).
 * Must never turn events on from anything but a parsed `true` the owner's command saved, nor leave
 * a torn file behind.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { LenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { fsyncDir, writeFileAtomic } from '../storage/atomic-file.ts';

export interface SavedSwitch {
  v: 1;
  enabled: boolean;
  /** Who switched (`cloud` for cmd/events). */
  by: string;
  /** ISO time of the switch. */
  at: string;
}

export type SwitchRead =
  { kind: 'none' } | { kind: 'saved'; saved: SavedSwitch } | { kind: 'unreadable'; reason: string };

/** Parses the file's text (pure): anything but the exact shape is unreadable. */
export function parseSwitch(text: string): SwitchRead {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { kind: 'unreadable', reason: 'not JSON' };
  }
  const o = v as Partial<SavedSwitch> | null;
  if (
    !o ||
    typeof o !== 'object' ||
    o.v !== 1 ||
    typeof o.enabled !== 'boolean' ||
    typeof o.by !== 'string' ||
    typeof o.at !== 'string'
  )
    return { kind: 'unreadable', reason: 'not a version 1 events switch' };
  return { kind: 'saved', saved: { v: 1, enabled: o.enabled, by: o.by, at: o.at } };
}

/** What events start as (pure): the saved switch, else config; unreadable → off. */
export function enabledAtStart(configEnabled: boolean, read: SwitchRead): boolean {
  if (read.kind === 'saved') return read.saved.enabled;
  if (read.kind === 'unreadable') return false;
  return configEnabled;
}

export function readSwitch(file: string): SwitchRead {
  if (!existsSync(file)) return { kind: 'none' };
  try {
    return parseSwitch(readFileSync(file, 'utf8'));
  } catch (err) {
    return { kind: 'unreadable', reason: (err as NodeJS.ErrnoException).code ?? 'read failed' };
  }
}

export interface EventsSwitch {
  /** Events at start: the saved switch, else config (off when the file is unreadable). */
  readonly initial: boolean;
  readonly source: SwitchRead['kind'] | 'config';
  /** Saves the owner's switch; throws LenscapError ERR_EVENTS_COMMAND when it cannot. */
  save(enabled: boolean, by: string, at: Date): void;
  /** Factory reset: forgets the saved switch (config applies again); false if it could not. */
  clear(): boolean;
}

export function openEventsSwitch(opts: {
  file: string;
  configEnabled: boolean;
  logger: Logger;
}): EventsSwitch {
  let read = readSwitch(opts.file);
  if (read.kind === 'unreadable')
    opts.logger.error(
      { code: 'ERR_EVENTS_COMMAND', file: opts.file, reason: read.reason },
      'the saved events switch is unreadable: motion events stay off until the owner switches them again',
    );
  else if (read.kind === 'saved' && read.saved.enabled !== opts.configEnabled)
    opts.logger.info(
      { enabled: read.saved.enabled, by: read.saved.by, at: read.saved.at },
      "motion events as the owner last switched them (over config's events.enabled)",
    );
  return {
    // Read when asked: a reset done before the events service is built is already reflected.
    get initial() {
      return enabledAtStart(opts.configEnabled, read);
    },
    get source() {
      return read.kind === 'none' ? ('config' as const) : read.kind;
    },
    clear() {
      try {
        rmSync(opts.file, { force: true });
        if (existsSync(dirname(opts.file))) fsyncDir(dirname(opts.file));
        read = { kind: 'none' };
        return true;
      } catch (err) {
        opts.logger.error(
          { code: 'ERR_EVENTS_COMMAND', err: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
          'the saved events switch could not be forgotten at the reset',
        );
        return false;
      }
    },
    save(enabled, by, at) {
      const s: SavedSwitch = { v: 1, enabled, by, at: at.toISOString() };
      try {
        mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
        writeFileAtomic(opts.file, `${JSON.stringify(s)}\n`);
        read = { kind: 'saved', saved: s };
      } catch (err) {
        throw new LenscapError(
          'ERR_EVENTS_COMMAND',
          `motion events are ${enabled ? 'on' : 'off'} now, but the switch was not saved (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): after a restart the last saved switch or config applies`,
        );
      }
    },
  };
}
