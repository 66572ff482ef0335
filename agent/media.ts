/**
 * The media side of the agent, composed: privacy state (config + cloud + hardware switch), the
 * stream service (in-process hub + supervised capture), the viewer gate (the camera's only media
 * port), push mode, the one session table both live in, and the status light. Part of the
 * composition root (see controller.ts): it
 * builds every part up front from explicit deps and hands them back as services in start order;
 * it decides nothing. Must never open a port other than the gate's beyond loopback.
 */
import { createStatusLed } from '../drivers/led/registry.ts';
import { createPrivacySwitch } from '../drivers/privacy/registry.ts';
import type { EventSink } from './audit/events.ts';
import type { Clock, Time } from './clock.ts';
import type { CommandRegistry } from './cloud/commands.ts';
import type { Config } from './config/schema.ts';
import { createGate } from './gate/gate.ts';
import type { GrantGateService } from './grants/grant-gate.ts';
import type { Logger } from './log.ts';
import { service, type Service } from './service.ts';
import { Activity } from './stream/activity.ts';
import { registerStreamCommands } from './push/commands.ts';
import { resolveFfmpegPath } from './stream/ffmpeg-path.ts';
import { createPrivacyState, type PrivacyState } from './privacy/state.ts';
import { createPushService } from './push/push.ts';
import { createStreamService, type StreamService } from './stream/service.ts';
import { stateLayout } from './state-layout.ts';
import { noViewerKeys, type ViewerKeySource } from './sealing/viewer-keys.ts';
import { SessionTable } from './sessions/table.ts';

export interface PrivacyBuildDeps {
  config: Config;
  serial: string;
  clock: Clock;
  logger: Logger;
  events: EventSink;
}

/** The privacy state and its service (watches the hardware switch while started). */
export function createPrivacy(deps: PrivacyBuildDeps): { state: PrivacyState; service: Service } {
  const log = deps.logger.child({ component: 'media' });
  const hardwareSwitch = createPrivacySwitch(deps.config.privacy.switch, (err) =>
    log.error({ code: 'ERR_PRIVACY_SWITCH', err: err.message }, 'privacy switch unreadable'),
  );
  const state = createPrivacyState({
    initial: deps.config.privacy.enabled,
    hardware: hardwareSwitch,
    serial: deps.serial,
    clock: deps.clock,
    logger: log,
    events: deps.events,
  });
  return { state, service: service('privacy', { start: () => state.start(), stop: () => state.stop() }) };
}

export interface MediaDeps {
  config: Config;
  serial: string;
  /** Device key and certificate (PEM) for the HTTPS gate. */
  tls: { key: string; cert: string };
  clock: Time;
  logger: Logger;
  /** Built (and started) before the media side: the grant gate asks it. */
  privacy: PrivacyState;
  grants: GrantGateService;
  /**
   * Viewer HPKE keys from the owner-signed membership. Absent (legacy cloud-signed mode): no
   * viewer has a key, so every push is refused `viewer_key_missing` — the gate still serves.
   */
  viewerKeys?: ViewerKeySource;
}

export interface MediaServices {
  /** In start order: status light, stream (hub + capture), push, viewer gate (listens last). */
  services: Service[];
  /** The capture pipeline, for the motion events service (a lease, a hub tap, the same ffmpeg). */
  stream: StreamService;
  registerCommands(registry: CommandRegistry): void;
  gateUrl(): string;
  counters(): { sessionsStarted: number; sessionsOpen: number };
  cameraDescription(): string;
  /** A renewed device certificate for the HTTPS gate (new connections use it). */
  updateTls(tls: { key: string; cert: string }): void;
  /** Cuts every viewer session and push whose viewer `keep` no longer admits (reset, membership). */
  cut(keep: (sub: string) => boolean, reason: 'owner_reset' | 'not_a_member'): number;
}

export function createMediaServices(deps: MediaDeps): MediaServices {
  const { config, serial, logger, clock, privacy } = deps;
  const log = logger.child({ component: 'media' });
  const led = createStatusLed(
    {
      driver: config.led.driver,
      ...(config.led.name ? { name: config.led.name } : {}),
      sysfsRoot: config.led.sysfsRoot,
    },
    (err) => log.warn({ code: 'ERR_LED', err: err.message }, 'status light unwritable'),
  );
  const activity = new Activity(led);
  // Resolved once here so push and capture run the same binary (a missing ffmpeg refuses the start).
  const ffmpegPath = resolveFfmpegPath({ configPath: config.stream.ffmpegPath }).path;
  const stream = createStreamService({
    serial,
    stream: config.stream,
    camera: config.camera,
    logger: log,
    privacy,
    ffmpegPath,
    clock,
    ...(config.camera.testPatternMotionHook
      ? { testPatternMotionFile: stateLayout(config.stateDir).testPatternMotion }
      : {}),
  });
  // The one session table (agent/sessions/): the gate's viewers and the pushes live in it, so one
  // cut policy ends both — exp by this clock, privacy on, stream.stop by jti, membership, reset,
  // shutdown. Its privacy watch is wired by the push service below (started before the gate
  // listens, stopped after the gate: it outlives every session).
  const sessions = new SessionTable(clock);
  let unwatchPrivacy: () => void = () => undefined;
  const gate = createGate({
    sessions,
    serial,
    config: config.gate,
    grants: deps.grants,
    stream,
    privacy,
    clock,
    logger: log,
    activity,
    ...(config.gate.tls ? { tls: deps.tls } : {}),
    viewerKeys: deps.viewerKeys ?? noViewerKeys,
  });
  const push = createPushService({
    serial,
    grants: deps.grants,
    stream,
    ffmpegPath,
    relayAllowList: config.stream.relayAllowList,
    clock,
    logger: log,
    activity,
    sessions,
    viewerKeys: deps.viewerKeys ?? noViewerKeys,
  });
  let streamRunning = false;
  let listening = false;

  const services: Service[] = [
    // Started first so it is stopped last: the light goes off once nothing can stream.
    service('status-light', { stop: () => led.set(false) }),
    {
      name: 'stream',
      async start() {
        await stream.start();
        streamRunning = true;
      },
      async stop() {
        streamRunning = false;
        await stream.stop();
      },
      health: () => (streamRunning ? { ok: true } : { ok: false, detail: 'hub not running' }),
    },
    service('push', {
      start: () => {
        unwatchPrivacy = sessions.watchPrivacy(privacy, (n) =>
          log.warn({ closed: n }, 'privacy on: every viewer session and push closed'),
        );
      },
      // After the gate (viewers already cut): pushes end, then the table's watch and timers.
      stop: async () => {
        await push.close();
        unwatchPrivacy();
        sessions.stop();
      },
    }),
    {
      name: 'gate',
      async start() {
        await gate.listen();
        listening = true;
      },
      // No session outlives the agent: viewers are cut before pushes and capture stop.
      async stop() {
        listening = false;
        await gate.close();
      },
      health: () => (listening ? { ok: true } : { ok: false, detail: 'gate not listening' }),
    },
  ];

  return {
    services,
    stream,
    registerCommands: (registry) => registerStreamCommands(registry, push),
    gateUrl: () => gate.url ?? '',
    counters: () => ({ sessionsStarted: gate.counters.accepted, sessionsOpen: sessions.count('view') }),
    cut: (keep, reason) => {
      // One call: viewers and pushes alike (each push's close detaches its hub tap at once).
      const n = sessions.closeUnless((s) => keep(s.sub), reason);
      if (n) log.warn({ closed: n, reason }, 'sessions cut: viewer no longer admitted');
      return n;
    },
    updateTls: (tls) => gate.updateTls(tls),
    cameraDescription: () => {
      const s = stream.status();
      return `${s.camera ?? 'unknown'} (${s.cameraReason ?? ''})`;
    },
  };
}
