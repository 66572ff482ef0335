/**
 * Automatic certificate renewal. When the device certificate has less than
 * `identity.renewWhenRemainingDays` left, a fresh key and CSR are made here and sent over mTLS
 * (authenticated by the current certificate) to the renewal endpoint; the answer is verified
 * (matches the new key, CN = our serial, chains to the PINNED device CA, currently valid) and
 * swapped in crash-safely (install.ts), so a power cut at any moment leaves a working identity and
 * the old certificate serves until the swap. Emits `identity_renewed`.
 * Must never replace a working identity with one that fails the start checks, and never throw
 * out of a timer: failures are logged and retried at the next check.
 */
import { readFileSync } from 'node:fs';
import type { EventSink } from '../audit/events.ts';
import { unrefTimer, type Time, type TimerHandle } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { describeError, LenscapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { StateLayout } from '../state-layout.ts';
import { checkIdentity, checkMaterial, type CheckedIdentity } from './check.ts';
import { postJson } from './http.ts';
import { installFiles, type InstallStep } from './install.ts';
import { RENEW_PATH, renewResponse } from './protocol.ts';

const DAY_MS = 86_400_000;

export interface RenewerDeps {
  paths: StateLayout;
  serial: string;
  config: Pick<Config, 'identity'>;
  /** Expiry checks and the check interval run on it. */
  clock: Time;
  logger: Logger;
  events: EventSink;
  /** Called with the new identity after a swap (e.g. to reload the gate's TLS context). */
  onRenewed?: (identity: CheckedIdentity) => void;
  keySize?: number;
  timeoutMs?: number;
  /** Tests: install step hook (throw to simulate a power cut). */
  onInstallStep?: (step: InstallStep) => void;
}

export interface RenewResult {
  renewed: boolean;
  notAfter: Date;
  /** Why not (when renewed is false). */
  reason?: 'not_due' | 'in_flight';
}

export interface Renewer {
  start(): void;
  stop(): void;
  /** Renews now if due; throws coded errors (the timer path logs them instead). */
  checkNow(): Promise<RenewResult>;
}

interface ProvisioningRecord {
  url?: string;
  renewUrl?: string;
  caPem?: string;
}

function readProvisioningRecord(paths: StateLayout): ProvisioningRecord {
  try {
    return JSON.parse(readFileSync(paths.provisioning, 'utf8')) as ProvisioningRecord;
  } catch {
    return {};
  }
}

export function renewalUrl(paths: StateLayout, configured?: string): string {
  if (configured) return configured;
  const rec = readProvisioningRecord(paths);
  if (rec.renewUrl) return rec.renewUrl;
  if (rec.url) return new URL(RENEW_PATH, rec.url).href;
  throw new LenscapError(
    'ERR_RENEW_NO_URL',
    `no renewal URL: set identity.renewUrl, or re-provision (${paths.provisioning} has none)`,
  );
}

export function createRenewer(deps: RenewerDeps): Renewer {
  const { paths, serial, clock, logger } = deps;
  const thresholdMs = deps.config.identity.renewWhenRemainingDays * DAY_MS;
  const intervalMs = deps.config.identity.renewCheckIntervalHours * 3_600_000;
  let timer: TimerHandle | undefined;
  let inFlight: Promise<RenewResult> | undefined;

  const renew = async (): Promise<RenewResult> => {
    const current = checkIdentity({ paths, expectedSerial: serial, clock });
    const remaining = current.notAfter.getTime() - clock.now();
    if (remaining >= thresholdMs) return { renewed: false, notAfter: current.notAfter, reason: 'not_due' };

    const url = renewalUrl(paths, deps.config.identity.renewUrl);
    const rec = readProvisioningRecord(paths);
    logger.info(
      { notAfter: current.notAfter.toISOString(), daysLeft: Math.floor(remaining / DAY_MS), url },
      'identity: certificate renewal due; requesting a new one',
    );
    // node-forge (key + CSR) is loaded only when a renewal is due: an idle camera never pays for it.
    const { generateDeviceKey } = await import('./keygen.ts');
    const fresh = generateDeviceKey(serial, deps.keySize ?? 2048);
    const { json } = await postJson(
      url,
      { csr: fresh.csrPem },
      {
        ca: rec.caPem ?? current.brokerCaPem,
        key: current.keyPem,
        cert: current.certPem + current.chainPem,
        timeoutMs: deps.timeoutMs,
      },
    );
    const parsed = renewResponse.safeParse(json);
    if (!parsed.success)
      throw new LenscapError(
        'ERR_RENEW_BAD_RESPONSE',
        `renewal answer malformed: ${parsed.error.issues[0]?.message ?? '?'}`,
      );
    const resp = parsed.data;
    // The pinned CA stays pinned: a renewal cannot move the camera to another CA.
    const facts = checkMaterial({
      keyPem: fresh.keyPem,
      certPem: resp.certPem,
      chainPem: resp.chainPem,
      caPem: current.caPem,
      expectedSerial: serial,
      now: clock.now(),
      where: 'renewal response',
    });
    if (facts.notAfter.getTime() <= current.notAfter.getTime()) {
      throw new LenscapError(
        'ERR_RENEW_NOT_NEWER',
        `the renewed certificate (until ${facts.notAfter.toISOString()}) does not outlive the current one`,
      );
    }
    installFiles({
      stateDir: paths.root,
      onStep: deps.onInstallStep,
      files: [
        { path: paths.deviceKey, data: fresh.keyPem, mode: 0o600 },
        { path: paths.deviceCert, data: resp.certPem, mode: 0o644 },
        { path: paths.chain, data: resp.chainPem, mode: 0o644 },
      ],
    });
    const installed = checkIdentity({ paths, expectedSerial: serial, clock });
    logger.info(
      { notAfter: installed.notAfter.toISOString(), certSerialNumber: installed.certSerialNumber },
      'identity: certificate renewed',
    );
    deps.events.emit({
      type: 'identity_renewed',
      at: new Date(clock.now()).toISOString(),
      serial,
      data: {
        previousNotAfter: current.notAfter.toISOString(),
        notAfter: installed.notAfter.toISOString(),
        certSerialNumber: installed.certSerialNumber,
      },
    });
    deps.onRenewed?.(installed);
    return { renewed: true, notAfter: installed.notAfter };
  };

  const checkNow = (): Promise<RenewResult> => {
    if (inFlight) return inFlight.then((r) => ({ ...r, renewed: false, reason: 'in_flight' as const }));
    inFlight = renew().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  const tick = () => {
    checkNow().catch((err) => {
      let notAfter: Date | undefined;
      try {
        notAfter = checkIdentity({ paths, clock }).notAfter;
      } catch {
        /* reported by the start checks on next start */
      }
      const urgent = notAfter !== undefined && notAfter.getTime() - clock.now() < DAY_MS;
      logger[urgent ? 'error' : 'warn'](
        {
          code: (err as LenscapError).code ?? 'ERR_RENEW_FAILED',
          err: describeError(err),
          notAfter: notAfter?.toISOString(),
        },
        'identity: certificate renewal failed; the current certificate stays in use, retrying at the next check',
      );
    });
  };

  return {
    start() {
      if (timer) return;
      tick();
      timer = clock.setInterval(tick, intervalMs);
      unrefTimer(timer);
    },
    stop() {
      if (timer !== undefined) clock.clearInterval(timer);
      timer = undefined;
    },
    checkNow,
  };
}
