/**
 * Composition root: builds every service with an explicit deps object, starts them in order and
 * stops them in reverse. The only place that knows how the rooms fit together; it decides nothing
 * itself. Must never be imported by a service (only by `lenscap run`, tests and benches).
 *
 * Start: identity checks (refuse to start on any failure) → event queue → privacy → grant gate →
 * stream hub → viewer gate → push → cloud link with its commands → telemetry → renewal → watchdog.
 * Stop: the reverse; sessions are closed before capture stops, `{"online":false}` is published,
 * the audit log and event queue are flushed last.
 */
import { EventQueue } from './audit/event-queue.ts';
import type { EventSink, SecurityEvent } from './audit/events.ts';
import { systemClock, systemRandom, type Clock, type Random } from './clock.ts';
import { CommandRegistry } from './cloud/commands.ts';
import { registerCoreCommands } from './cloud/core-commands.ts';
import { createCloudLink, type CloudLink } from './cloud/link.ts';
import type { Config } from './config/schema.ts';
import { describeError } from './errors.ts';
import { createGrantGate } from './grants/grant-gate.ts';
import { loadIdentity } from './identity/load.ts';
import { createLogger, type Logger } from './log.ts';
import { stateLayout } from './state-layout.ts';
import { ensureUsableStateDir } from './storage/state-dir-access.ts';
import { createWatchdog } from './systemd/watchdog.ts';
import { createTelemetry } from './telemetry/telemetry.ts';
import { createMediaServices } from './media.ts';
import { OwnerTrust } from './owner/owner-trust.ts';
import { membershipViewerKeys } from './sealing/viewer-keys.ts';
import { guardLegacyBinding, registerOwnerCommands } from './cloud/owner-commands.ts';
import { startResetWatch } from './owner/reset.ts';
import { createResetInput } from '../drivers/reset/registry.ts';

export interface AgentDeps {
  logger?: Logger;
  clock?: Clock;
  random?: Random;
  /** Environment for the systemd watchdog (NOTIFY_SOCKET …); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface AgentHandle {
  serial: string;
  /** Where viewers connect, e.g. https://0.0.0.0:8443 (the bound address). */
  gateUrl: string;
  link: CloudLink | undefined;
  stop(reason?: string): Promise<void>;
}

export async function startAgent(config: Config, deps: AgentDeps = {}): Promise<AgentHandle> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? systemRandom;
  const baseLogger = deps.logger ?? createLogger({ level: config.log.level, pretty: config.log.pretty });
  const paths = stateLayout(config.stateDir);
  const stops: Array<{ name: string; stop: () => Promise<void> | void }> = [];
  const stopAll = async (logger: Logger) => {
    for (const s of stops.splice(0).reverse()) {
      try {
        await s.stop();
      } catch (err) {
        logger.warn({ service: s.name, err: describeError(err) }, 'error while stopping');
      }
    }
  };

  // 0. The state dir itself: wrong owner or a file in its place is a coded error naming the fix.
  ensureUsableStateDir(paths.root);
  // 1. Identity: the serial is the certificate's CN; any doubt stops the agent here.
  const identity = loadIdentity({ paths, expectedSerial: config.serial, clock });
  const serial = identity.serial;
  const logger = baseLogger.child({ serial });
  logger.info(
    { notAfter: identity.notAfter, stateDir: paths.root, recovered: identity.recovered },
    'identity checked',
  );

  try {
    // 2. Security events: queued on disk first, so nothing emitted from here on can be lost.
    const queue = EventQueue.open({
      file: paths.eventQueue,
      serial,
      maxEvents: config.cloud.eventQueue.maxEvents,
      maxBytes: config.cloud.eventQueue.maxBytes,
      clock,
      logger,
    });
    stops.push({ name: 'event queue', stop: () => queue.close() });
    const events: EventSink = queue;

    // 3–6. Privacy, grants, stream hub, viewer gate, push: the media side.
    let grantsRef: ReturnType<typeof createGrantGate> | undefined;
    // Owner-held trust: the owner's membership, once claimed, decides who may view
    // and whose key live video is sealed to.
    const owner = OwnerTrust.load({ serial, paths, clock, logger, events, config: config.owner });
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
      events,
      grants: () => grantsRef!,
    });
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
      isPrivacyOn: () => media.privacy.isOn(),
    });
    grantsRef = grants;
    stops.push({ name: 'grants', stop: () => grants.close() });
    // A local factory reset (button, or `lenscap reset` while running or before this start) takes
    // effect at once: owner and binding gone, every session and push cut.
    const resetWatch = startResetWatch({
      paths,
      logger,
      input: createResetInput(config.owner.resetInput, (err) =>
        logger.error({ code: 'ERR_RESET_INPUT', err: err.message }, 'reset button unreadable'),
      ),
      reset: (source) => {
        owner.reset(source);
        grants.trust.clearBinding();
        media.cut(() => false, 'owner_reset');
      },
    });
    resetWatch.check();
    stops.push({ name: 'reset watch', stop: () => resetWatch.stop() });
    await media.start();
    stops.push({ name: 'media', stop: () => media.stop() });
    owner.on('change', () => media.cut((sub) => owner.isMember(sub), 'not_a_member'));

    // 7. Cloud link and the commands it carries.
    const registry = new CommandRegistry();
    let telemetryRef: ReturnType<typeof createTelemetry> | undefined;
    registerCoreCommands(registry, {
      clock,
      acceptBinding: guardLegacyBinding(owner, (jws) => grants.trust.acceptBinding(jws)),
      acceptTrustBundle: (jws) => grants.trust.acceptTrustBundle(jws),
      setPrivacy: (enabled) => media.privacy.set(enabled, 'cloud'),
      sendTelemetry: async () => (await telemetryRef!.sendNow()).sample,
      uptimeSeconds: () => Math.round(process.uptime()),
    });
    media.registerCommands(registry);
    registerOwnerCommands(registry, owner);
    let link: CloudLink | undefined;
    if (config.cloud.url) {
      link = createCloudLink({
        config,
        serial,
        paths,
        clock,
        random,
        logger,
        events: queue,
        commands: registry,
        state: () => ({ gate: media.gateUrl(), version: process.env.npm_package_version }),
      });
      link.start();
      stops.push({ name: 'cloud link', stop: () => link!.stop() });
    } else {
      logger.warn(
        { code: 'CLOUD_DISABLED' },
        'cloud.url not set: running without a cloud link; security events stay queued on disk',
      );
    }

    // 8. Telemetry.
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
      }),
      publish: (sample) =>
        link ? link.publishTelemetry(sample as unknown as Record<string, unknown>) : Promise.resolve(false),
    });
    telemetryRef = telemetry;
    telemetry.start();
    stops.push({ name: 'telemetry', stop: () => telemetry.stop() });

    // 9. Certificate renewal. The cloud link reads the files at each connect; the gate's TLS
    // context is swapped in place so viewers see the new certificate without a restart.
    const renewer = identity.createRenewer({
      config,
      clock,
      logger,
      events,
      onRenewed: (id) =>
        media.updateTls({ key: id.keyPem, cert: id.certPem + (id.chainPem ? `\n${id.chainPem}` : '') }),
    });
    renewer.start();
    stops.push({ name: 'renewal', stop: () => renewer.stop() });

    // 10. systemd watchdog: pings only while the media side is healthy.
    const watchdog = createWatchdog({ logger, env: deps.env ?? process.env, healthy: () => media.healthy() });
    await watchdog.start();
    stops.push({ name: 'watchdog', stop: () => watchdog.stop() });

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
      stop: (reason = 'stop') =>
        (stopping ??= (async () => {
          logger.info({ reason }, 'lenscap stopping');
          await stopAll(logger);
          logger.info('lenscap stopped');
        })()),
    };
  } catch (err) {
    logger.error({ err: describeError(err) }, 'start failed; stopping what started');
    await stopAll(logger);
    throw err;
  }
}

export type { SecurityEvent };
