/**
 * The media side of the agent, composed: privacy state (config + cloud + hardware switch), the
 * stream service (loopback hub + supervised capture), the viewer gate (the camera's only media
 * port), push mode and the status light. Part of the composition root (see controller.ts): it
 * wires, it decides nothing. Must never open a port other than the gate's beyond loopback.
 */
import { createStatusLed } from '../drivers/led/registry.ts';
import { createPrivacySwitch } from '../drivers/privacy/registry.ts';
import type { EventSink } from './audit/events.ts';
import type { Clock } from './clock.ts';
import type { CommandRegistry } from './cloud/commands.ts';
import type { Config } from './config/schema.ts';
import { createGate, type Gate } from './gate/gate.ts';
import type { GrantGateService } from './grants/grant-gate.ts';
import type { Logger } from './log.ts';
import { Activity } from './stream/activity.ts';
import { registerStreamCommands } from './stream/commands.ts';
import { createPrivacyState, type PrivacyState } from './stream/privacy.ts';
import { createPushService, type PushService } from './stream/push.ts';
import { createStreamService, type StreamService } from './stream/service.ts';
import { noViewerKeys, type ViewerKeySource } from './sealing/viewer-keys.ts';

export interface MediaDeps {
  config: Config;
  serial: string;
  /** Device key and certificate (PEM) for the HTTPS gate. */
  tls: { key: string; cert: string };
  clock: Clock;
  logger: Logger;
  events: EventSink;
  /** The grant gate is built after privacy (it asks privacy), so it is handed over lazily. */
  grants: () => GrantGateService;
  /**
   * Viewer HPKE keys from the owner-signed membership. Absent (legacy cloud-signed mode): no
   * viewer has a key, so every push is refused `viewer_key_missing` — the gate still serves.
   */
  viewerKeys?: ViewerKeySource;
}

export interface MediaServices {
  privacy: PrivacyState;
  start(): Promise<void>;
  stop(): Promise<void>;
  registerCommands(registry: CommandRegistry): void;
  gateUrl(): string;
  counters(): { sessionsStarted: number; sessionsOpen: number };
  /** False when the gate is not listening (the watchdog withholds pings then). */
  healthy(): boolean;
  cameraDescription(): string;
  /** A renewed device certificate for the HTTPS gate (new connections use it). */
  updateTls(tls: { key: string; cert: string }): void;
  /** Cuts every viewer session and push whose viewer `keep` no longer admits (reset, membership). */
  cut(keep: (sub: string) => boolean, reason: 'owner_reset' | 'not_a_member'): number;
}

export function createMediaServices(deps: MediaDeps): MediaServices {
  const { config, serial, logger, clock } = deps;
  const log = logger.child({ component: 'media' });
  const hardwareSwitch = createPrivacySwitch(config.privacy.switch, (err) =>
    log.error({ code: 'ERR_PRIVACY_SWITCH', err: err.message }, 'privacy switch unreadable'),
  );
  const privacy = createPrivacyState({
    initial: config.privacy.enabled,
    hardware: hardwareSwitch,
    serial,
    clock,
    logger: log,
    events: deps.events,
  });
  const led = createStatusLed(
    {
      driver: config.led.driver,
      ...(config.led.name ? { name: config.led.name } : {}),
      sysfsRoot: config.led.sysfsRoot,
    },
    (err) => log.warn({ code: 'ERR_LED', err: err.message }, 'status light unwritable'),
  );
  const activity = new Activity(led);
  const stream: StreamService = createStreamService({
    serial,
    stream: config.stream,
    camera: config.camera,
    logger: log,
    privacy,
  });
  let gate: Gate | undefined;
  let push: PushService | undefined;
  let listening = false;

  return {
    privacy,
    async start() {
      privacy.start();
      await stream.start();
      gate = createGate({
        serial,
        config: config.gate,
        grants: deps.grants(),
        stream,
        privacy,
        clock,
        logger: log,
        activity,
        ...(config.gate.tls ? { tls: deps.tls } : {}),
        viewerKeys: deps.viewerKeys ?? noViewerKeys,
      });
      push = createPushService({
        serial,
        grants: deps.grants(),
        stream,
        ffmpegPath: stream.ffmpegPath,
        relayAllowList: config.stream.relayAllowList,
        clock,
        logger: log,
        activity,
        closeSessions: (jti) => gate?.closeByJti(jti) ?? 0,
        privacy,
        viewerKeys: deps.viewerKeys ?? noViewerKeys,
      });
      await gate.listen();
      listening = true;
    },
    async stop() {
      listening = false;
      // Viewers first (no session outlives the agent), then pushes, then capture.
      await gate?.close();
      await push?.close();
      await stream.stop();
      privacy.stop();
      led.set(false);
    },
    registerCommands(registry) {
      if (!push) throw new Error('media services not started');
      registerStreamCommands(registry, push);
    },
    gateUrl: () => gate?.url ?? '',
    counters: () => ({
      sessionsStarted: gate?.counters.accepted ?? 0,
      sessionsOpen: gate?.sessions.size ?? 0,
    }),
    healthy: () => listening,
    cut: (keep, reason) => {
      let n = gate?.sessions.closeUnless((s) => keep(s.sub), reason) ?? 0;
      for (const p of push?.active() ?? []) {
        if (keep(p.sub)) continue;
        n++;
        void push!.stop(p.jti);
      }
      if (n) log.warn({ closed: n, reason }, 'sessions cut: viewer no longer admitted');
      return n;
    },
    updateTls: (tls) => {
      deps.tls = tls;
      gate?.updateTls(tls);
    },
    cameraDescription: () => {
      const s = stream.status();
      return `${s.camera ?? 'unknown'} (${s.cameraReason ?? ''})`;
    },
  };
}
