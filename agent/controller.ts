/**
 * Composition root: builds every service with an explicit deps object and hands each, as soon as
 * it is built, to one ServiceRunner (agent/service.ts) that starts them in order and stops them in
 * the exact reverse — also when a later start fails. Every dependency points backwards in that
 * order, so nothing is wired through a late reference. The only place that knows how the rooms fit
 * together; it decides nothing itself. Must never be imported by a service (only by `lenscap run`,
 * tests and benches).
 *
 * Start (docs/architecture.md, "Start and stop order"; test/agent/lifecycle.test.ts holds both to
 * it): identity checks (refuse to start on any failure) → event-queue → privacy → grant-gate →
 * reset-watch → status-light → stream → push → gate → cloud-link → telemetry → renewal → watchdog.
 * Stop: the reverse; sessions are closed before capture stops, `{"online":false}` is published,
 * the decision log and event queue are flushed last.
 */
import { EventQueue } from './audit/event-queue.ts';
import type { EventSink, SecurityEvent } from './audit/events.ts';
import { systemClock, systemRandom, type Random, type Time } from './clock.ts';
import { CommandRegistry } from './cloud/commands.ts';
import { registerCoreCommands } from './cloud/core-commands.ts';
import { createCloudLink, type CloudLink } from './cloud/link.ts';
import type { Config } from './config/schema.ts';
import { describeError } from './errors.ts';
import { service, ServiceRunner, type RunnerHealth } from './service.ts';
import { createGrantGate } from './grants/grant-gate.ts';
import { loadIdentity } from './identity/load.ts';
import { createLogger, type Logger } from './log.ts';
import { stateLayout } from './state-layout.ts';
import { ensureUsableStateDir } from './storage/state-dir-access.ts';
import { createWatchdog } from './systemd/watchdog.ts';
import { createTelemetry } from './telemetry/telemetry.ts';
import { createMediaServices, createPrivacy } from './media.ts';
import { OwnerTrust } from './owner/owner-trust.ts';
import { membershipViewerKeys } from './sealing/viewer-keys.ts';
import { guardLegacyBinding, registerOwnerCommands } from './cloud/owner-commands.ts';
import { startResetWatch } from './owner/reset.ts';
import { createResetInput } from '../drivers/reset/registry.ts';
import { createUploadService } from './uploads/service.ts';
import { registerEventsCommands } from './events/commands.ts';
import { createEventsService } from './events/service.ts';
import { openEventsSwitch } from './events/switch.ts';

export interface AgentDeps {
  logger?: Logger;
  clock?: Time;
  random?: Random;
  /** Environment for the systemd watchdog (NOTIFY_SOCKET …); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Sees every service start and stop, in order (tests hold the documented order with it). */
  onService?: (phase: 'started' | 'stopped', name: string) => void;
}

export interface AgentHandle {
  serial: string;
  /** Where viewers connect, e.g. https://0.0.0.0:8443 (the bound address). */
  gateUrl: string;
  link: CloudLink | undefined;
  /** Names of the running services, in start order. */
  services(): string[];
  /** Every service's health; the systemd watchdog pings only while it is ok. */
  health(): RunnerHealth;
  stop(reason?: string): Promise<void>;
}

export async function startAgent(config: Config, deps: AgentDeps = {}): Promise<AgentHandle> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? systemRandom;
  const baseLogger = deps.logger ?? createLogger({ level: config.log.level, pretty: config.log.pretty });
  const paths = stateLayout(config.stateDir);

  // The state dir itself: wrong owner or a file in its place is a coded error naming the fix.
  ensureUsableStateDir(paths.root);
  // Identity: the serial is the certificate's CN; any doubt stops the agent here.
  const identity = loadIdentity({ paths, expectedSerial: config.serial, clock });
  const serial = identity.serial;
  const logger = baseLogger.child({ serial });
  logger.info(
    { notAfter: identity.notAfter, stateDir: paths.root, recovered: identity.recovered },
    'identity checked',
  );
  const run = new ServiceRunner(logger, deps.onService);

  try {
    // Security events: queued on disk first, so nothing emitted from here on can be lost.
    const queue = EventQueue.open({
      file: paths.eventQueue,
      serial,
      maxEvents: config.cloud.eventQueue.maxEvents,
      maxBytes: config.cloud.eventQueue.maxBytes,
      clock,
      logger,
    });
    await run.start(service('event-queue', { stop: () => queue.close() }));
    const events: EventSink = queue;

    // The upload queue (the ArtifactSink sealed event artifacts are handed to): built now so an
    // artifact is taken over durably at any time; it uploads once started after the cloud link.
    let linkRef: CloudLink | undefined;
    const uploads = createUploadService({
      config,
      indexFile: paths.uploadIndex,
      spoolDir: paths.eventSpool,
      serial,
      clock,
      random,
      logger,
      events,
      link: () => linkRef,
    });

    // Owner-held trust: the owner's membership, once claimed, decides who may view and whose key
    // live video is sealed to.
    const owner = OwnerTrust.load({ serial, paths, clock, logger, events, config: config.owner });

    // Privacy before the grant gate, which asks it on every decision.
    const privacy = createPrivacy({ config, serial, clock, logger, events });
    await run.start(privacy.service);
    const grants = createGrantGate({
      owner,
      dpopWindowSeconds: config.owner.dpopWindowSeconds,
      serial,
      grants: config.grants,
      relayAllowList: config.stream.relayAllowList,
      paths,
      clock,
      logger,
      events,
      isPrivacyOn: () => privacy.state.isOn(),
    });
    await run.start(service('grant-gate', { stop: () => grants.close() }));

    // The media side, built whole (nothing listens yet) so the reset watch can cut it.
    const media = createMediaServices({
      viewerKeys: membershipViewerKeys(owner),
      config,
      serial,
      tls: {
        key: identity.keyPem,
        cert: identity.certPem + (identity.chainPem ? `\n${identity.chainPem}` : ''),
      },
      clock,
      logger,
      privacy: privacy.state,
      grants,
    });
    // The owner's saved events switch (cmd/events): opened before the reset watch, which forgets it.
    const motionSwitch = openEventsSwitch({
      file: paths.eventsSwitch,
      configEnabled: config.events.enabled,
      logger,
    });
    let motionRef: { setEnabled(on: boolean, by?: string): unknown } | undefined;
    // A local factory reset (button, or `lenscap reset` while running or before this start) takes
    // effect at once — before the gate listens: owner and binding gone, every session and push cut,
    // the previous owner's events switch forgotten (config's events.enabled applies again).
    let resetWatch: ReturnType<typeof startResetWatch> | undefined;
    await run.start(
      service('reset-watch', {
        start: () => {
          resetWatch = startResetWatch({
            paths,
            logger,
            clock,
            input: createResetInput(config.owner.resetInput, (err) =>
              logger.error({ code: 'ERR_RESET_INPUT', err: err.message }, 'reset button unreadable'),
            ),
            reset: (source) => {
              owner.reset(source);
              grants.trust.clearBinding();
              media.cut(() => false, 'owner_reset');
              motionSwitch.clear();
              motionRef?.setEnabled(config.events.enabled, 'owner_reset');
            },
          });
          resetWatch.check();
        },
        stop: () => resetWatch?.stop(),
      }),
    );
    owner.on('change', () => media.cut((sub) => owner.isMember(sub), 'not_a_member'));
    await run.startAll(media.services);

    // Cloud link and the commands it carries. Telemetry is built before the core commands are
    // registered (`cmd/telemetry` sends a sample), and both before the link starts.
    const registry = new CommandRegistry();
    const link: CloudLink | undefined = config.cloud.url
      ? createCloudLink({
          config,
          serial,
          paths,
          clock,
          random,
          logger,
          events: queue,
          commands: registry,
          state: () => ({ gate: media.gateUrl(), version: process.env.npm_package_version }),
        })
      : undefined;
    // Motion events (issue 16): sealed to the keys of the owner-signed membership at the trigger;
    // built before the link so `cmd/events` is registered, started after it. The owner's last
    // `cmd/events` (saved, motionSwitch above) wins over config's events.enabled.
    const motion = createEventsService({
      serial,
      config: { ...config.events, enabled: motionSwitch.initial },
      fps: config.camera.fps,
      spoolDir: paths.eventSpool,
      clock,
      logger,
      events,
      stream: media.stream,
      privacy: privacy.state,
      membership: () => {
        const m = owner.current();
        return (
          m && { version: m.version, keys: owner.viewerKeys().map((k) => ({ kid: k.kid, publicKey: k.jwk })) }
        );
      },
      sink: uploads.sink,
    });
    const telemetry = createTelemetry({
      intervalSeconds: config.telemetry.intervalSeconds,
      probe: { diskPath: paths.root },
      clock,
      logger,
      counters: () => ({
        reconnects: link?.counters().reconnects ?? 0,
        refusals: grants.counters.refused + (link?.counters().commandsRefused ?? 0),
        sessionsStarted: media.counters().sessionsStarted,
        sessionsOpen: media.counters().sessionsOpen,
        eventsQueued: queue.size,
        motionRingBytes: motion.status().ring.bytes,
      }),
      publish: (sample) =>
        link ? link.publishTelemetry(sample as unknown as Record<string, unknown>) : Promise.resolve(false),
    });
    registerCoreCommands(registry, {
      clock,
      acceptBinding: guardLegacyBinding(owner, (jws) => grants.trust.acceptBinding(jws)),
      acceptTrustBundle: (jws) => grants.trust.acceptTrustBundle(jws),
      setPrivacy: (enabled) => privacy.state.set(enabled, 'cloud'),
      sendTelemetry: async () => (await telemetry.sendNow()).sample,
      uptimeSeconds: () => Math.round(process.uptime()),
    });
    media.registerCommands(registry);
    registerOwnerCommands(registry, owner);
    registerEventsCommands(registry, motion, { switch: motionSwitch, clock });
    motionRef = motion;
    uploads.registerCommands(registry);
    linkRef = link;
    if (link) {
      // Offline is not unhealthy: the link reconnects by itself, and a restart would not help.
      await run.start(
        service('cloud-link', {
          start: () => link.start(),
          stop: () => link.stop(),
          health: () => ({ ok: true, detail: link.isOnline() ? 'online' : 'offline' }),
        }),
      );
    } else {
      logger.warn(
        { code: 'CLOUD_DISABLED' },
        'cloud.url not set: running without a cloud link; security events stay queued on disk',
      );
    }
    // After the link (stopped before it): a queue over its bound is a health detail, not a fault.
    await run.start(
      service('uploads', {
        start: () => uploads.start(),
        stop: () => uploads.stop(),
        health: () => ({ ok: true, detail: `${uploads.status().queued} queued` }),
      }),
    );
    // Healthy even when recording fails: a restart would not bring a viewer key or a camera back.
    await run.start(
      service('events', {
        start: () => motion.start(),
        stop: () => motion.stop(),
        health: () => ({ ok: true }),
      }),
    );
    await run.start(service('telemetry', { start: () => telemetry.start(), stop: () => telemetry.stop() }));

    // Certificate renewal. The cloud link reads the files at each connect; the gate's TLS
    // context is swapped in place so viewers see the new certificate without a restart.
    const renewer = identity.createRenewer({
      config,
      clock,
      logger,
      events,
      onRenewed: (id) =>
        media.updateTls({ key: id.keyPem, cert: id.certPem + (id.chainPem ? `\n${id.chainPem}` : '') }),
    });
    await run.start(service('renewal', { start: () => renewer.start(), stop: () => renewer.stop() }));

    // systemd watchdog: pings only while every started service reports healthy.
    const watchdog = createWatchdog({
      logger,
      env: deps.env ?? process.env,
      health: () => run.health(),
    });
    await run.start(service('watchdog', { start: () => watchdog.start(), stop: () => watchdog.stop() }));

    const gateUrl = media.gateUrl();
    logger.info(
      { gate: gateUrl, cloud: config.cloud.url ?? null, camera: media.cameraDescription() },
      'lenscap running',
    );
    let stopping: Promise<void> | undefined;
    return {
      serial,
      gateUrl,
      link,
      services: () => run.names(),
      health: () => run.health(),
      stop: (reason = 'stop') =>
        (stopping ??= (async () => {
          logger.info({ reason }, 'lenscap stopping');
          await run.stop();
          logger.info('lenscap stopped');
        })()),
    };
  } catch (err) {
    logger.error({ err: describeError(err) }, 'start failed; stopping what started');
    await run.stop();
    throw err;
  }
}

export type { SecurityEvent };
