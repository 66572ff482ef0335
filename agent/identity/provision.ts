/**
 * Field provisioning on the camera: key + CSR made here, certificate and trust material fetched
 * with a one-time token over HTTPS (trusting only the given CA), everything verified, then
 * installed crash-safely (install.ts). One printed line per step: a person watches a factory line.
 * Idempotent and resumable: a valid identity is left alone unless `force`; an interrupted run is
 * finished (committed install, or the pending key re-used with the same token) or started clean.
 * Must never send, print or log the private key, nor print the whole token.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../clock.ts';
import { LenscapError, describeError } from '../errors.ts';
import { verifyTrustBundle } from '../grants/trust-bundle.ts';
import { redactToken } from '../log.ts';
import { stateLayout, type StateLayout } from '../state-layout.ts';
import { randomBytes } from 'node:crypto';
import { CLAIM_SECRET_BYTES, formatClaimCode } from '../owner/claim-code.ts';
import { writeClaimSecret } from '../owner/owner-store.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import { ensureUsableStateDir } from '../storage/state-dir-access.ts';
import { checkIdentity, checkMaterial } from './check.ts';
import { postJson } from './http.ts';
import { ensureStateDirs, installFiles, recoverInstall, type InstallStep } from './install.ts';
import { csrForKeyPem, generateDeviceKey } from './keygen.ts';
import { checkAgainstPins, loadPins, type Pins } from './pins.ts';
import {
  CLIENT_ERRORS,
  MAX_CLOCK_SKEW_MS,
  PROVISION_PATH,
  provisionResponse,
  RENEW_PATH,
  SERVICE_ERRORS,
  type ProvisionResponse,
} from './protocol.ts';

export const PENDING_FILE = '.provision-pending.json';
/**
 * Service answers after which the same token can never succeed: the pending key is deleted at once
 * (a private key is never left behind for nothing), and the next run starts clean.
 */
const FINAL_REFUSALS: ReadonlySet<string> = new Set([
  SERVICE_ERRORS.tokenInvalid,
  SERVICE_ERRORS.tokenExpired,
  SERVICE_ERRORS.tokenUsed,
  SERVICE_ERRORS.serialNotAllowed,
  SERVICE_ERRORS.badRequest,
]);
const SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ProvisionOptions {
  serial: string;
  /** https://HOST:PORT (the provisioning path is added) or the full endpoint URL. */
  url: string;
  token: string;
  /** The only CA trusted for the service's certificate (PEM text). */
  caPem: string;
  stateDir: string;
  force?: boolean;
  keySize?: number;
  clock: Clock;
  out: (line: string) => void;
  timeoutMs?: number;
  /** The image's pins (pins.ts); default: read from the image's certs/; null: none. */
  pins?: Pins | null;
  /** Tests: called after each install step (throw to simulate a power cut). */
  onInstallStep?: (step: InstallStep) => void;
}

export interface ProvisionResult {
  status: 'provisioned' | 'already';
  serial: string;
  notAfter: Date;
  /** The label's claim code, when it was made by this run (printed once, see ensureClaimSecret). */
  claimCode?: string;
}

export function provisioningEndpoint(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LenscapError(
      CLIENT_ERRORS.usage,
      `--url ${JSON.stringify(url)} is not a URL (expected https://HOST:PORT)`,
    );
  }
  if (u.protocol !== 'https:')
    throw new LenscapError(CLIENT_ERRORS.usage, `--url must be https:// (got ${u.protocol})`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = PROVISION_PATH;
  return u;
}

function withDiskErrors<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new LenscapError(
        CLIENT_ERRORS.diskFull,
        `disk full while ${what} (${code}); free space on the state dir's filesystem (df -h) and re-run — nothing half-written is used`,
        { code },
      );
    }
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
      throw new LenscapError(
        'ERR_PROVISION_STATE_DIR',
        `cannot write while ${what} (${code}); is the state dir writable by this user?`,
        { code },
      );
    }
    throw err;
  }
}

export async function provisionDevice(opts: ProvisionOptions): Promise<ProvisionResult> {
  const { serial, out, clock } = opts;
  const steps = 7;
  let n = 0;
  const step = (line: string) => out(`[${++n}/${steps}] ${line}`);
  if (!SERIAL_RE.test(serial))
    throw new LenscapError(
      CLIENT_ERRORS.usage,
      `--serial ${JSON.stringify(serial)}: letters, digits, ".", "_" and "-" only (max 64)`,
    );
  const endpoint = provisioningEndpoint(opts.url);
  const paths = stateLayout(opts.stateDir);
  // A pinned image talks only to a provisioning service whose CA is (or is issued by) its pin.
  const pins = opts.pins === undefined ? loadPins() : (opts.pins ?? undefined);
  checkAgainstPins(pins, { provisioningCaPem: opts.caPem });

  // 1. State dir, and whatever an interrupted run left.
  const recovered = withDiskErrors('preparing the state dir', () => {
    ensureUsableStateDir(paths.root);
    ensureStateDirs(paths.root, []);
    return recoverInstall(paths.root);
  });
  step(
    `state dir ${paths.root}: ready${recovered === 'finished' ? ' (finished an interrupted install)' : recovered === 'discarded' ? ' (discarded an unfinished install)' : ''}`,
  );

  // 2. Existing identity.
  let existing: string | undefined;
  try {
    const id = checkIdentity({ paths, clock });
    existing = id.serial;
    if (!opts.force) {
      if (id.serial !== serial) {
        throw new LenscapError(
          CLIENT_ERRORS.alreadyProvisioned,
          `this camera already has a valid identity for ${id.serial}, not ${serial}; check the serial label, or re-run with --force to replace it`,
        );
      }
      rmSync(join(paths.root, PENDING_FILE), { force: true }); // an interrupted run's key, now unneeded
      step(
        `existing identity ${id.serial} is valid until ${id.notAfter.toISOString()}: nothing to do (use --force to replace it)`,
      );
      const claimCode = withDiskErrors('making the claim code', () => ensureClaimSecret(paths, out, false));
      return {
        status: 'already',
        serial: id.serial,
        notAfter: id.notAfter,
        ...(claimCode ? { claimCode } : {}),
      };
    }
    step(`existing identity ${id.serial} will be replaced (--force)`);
  } catch (err) {
    if (err instanceof LenscapError && err.code === CLIENT_ERRORS.alreadyProvisioned) throw err;
    if (err instanceof LenscapError && err.code === 'ERR_IDENTITY_MISSING') step('no identity yet');
    else if (existing === undefined) step(`existing identity unusable (${describeError(err)}): replacing it`);
  }

  // 3. Key and CSR, made here. A pending key from an interrupted run with this serial is reused,
  //    so the same token can finish (the service redeems it again for the same public key).
  const pendingFile = join(paths.root, PENDING_FILE);
  let keyPem: string;
  let csrPem: string;
  const pending = readPending(pendingFile);
  if (pending && pending.serial === serial) {
    keyPem = pending.keyPem;
    csrPem = csrForKeyPem(serial, keyPem);
    step(
      pending.stoppedAt
        ? `reusing the key made by the earlier run, which stopped at ${pending.stoppedAt} (it never left the device)`
        : 'reusing the key made by an interrupted run (it never left the device)',
    );
  } else {
    const bits = opts.keySize ?? 2048;
    const t0 = performance.now();
    const k = generateDeviceKey(serial, bits);
    keyPem = k.keyPem;
    csrPem = k.csrPem;
    withDiskErrors('saving the new key', () =>
      writeFileAtomic(pendingFile, JSON.stringify({ serial, keyPem }), 0o600),
    );
    step(
      `generated an RSA-${bits} key on the device in ${Math.round(performance.now() - t0)} ms (it never leaves the device)`,
    );
  }

  // 4. Request. A final refusal deletes the pending key; any other failure records where this run
  //    stopped, so the next one says so instead of calling it interrupted.
  let json: unknown;
  try {
    ({ json } = await postJson(
      endpoint.href,
      { serial, token: opts.token, csr: csrPem },
      { ca: opts.caPem, timeoutMs: opts.timeoutMs },
    ));
  } catch (err) {
    const code = err instanceof LenscapError ? err.code : 'ERR_PROVISION_UNREACHABLE';
    try {
      if (FINAL_REFUSALS.has(code)) rmSync(pendingFile, { force: true });
      else writeFileAtomic(pendingFile, JSON.stringify({ serial, keyPem, stoppedAt: code }), 0o600);
    } catch {
      /* the original error is the one to report */
    }
    throw err;
  }
  const parsed = provisionResponse.safeParse(json);
  if (!parsed.success)
    throw new LenscapError(
      CLIENT_ERRORS.badResponse,
      `the service's answer is not a provisioning response: ${parsed.error.issues[0]?.message ?? '?'}`,
    );
  const resp = parsed.data;
  step(`certificate received from ${endpoint.host} (token ${redactToken(opts.token)})`);

  // 5. Verify everything before anything is installed.
  const facts = verifyResponse(resp, { keyPem, serial, now: clock.now() });
  checkAgainstPins(pins, { trustRootJwk: resp.trustRootJwk, brokerCaPem: resp.brokerCaPem });
  step(
    `verified: certificate matches the key, CN ${facts.serial}, chains to the device CA, valid until ${facts.notAfter.toISOString()}; trust bundle v${facts.trustVersion} signed by the trust root`,
  );

  // 6. Install.
  const renewUrl = resp.renewUrl ?? new URL(RENEW_PATH, endpoint).href;
  withDiskErrors('installing the identity', () =>
    installFiles({
      stateDir: paths.root,
      onStep: opts.onInstallStep,
      files: [
        { path: paths.deviceKey, data: keyPem, mode: 0o600 },
        { path: paths.deviceCert, data: resp.certPem, mode: 0o644 },
        { path: paths.chain, data: resp.chainPem, mode: 0o644 },
        { path: paths.deviceCa, data: resp.deviceCaPem, mode: 0o644 },
        {
          path: paths.provisioning,
          data:
            JSON.stringify(
              {
                url: endpoint.href,
                renewUrl,
                serial,
                provisionedAt: new Date(clock.now()).toISOString(),
                caPem: opts.caPem,
              },
              null,
              2,
            ) + '\n',
          mode: 0o644,
        },
        { path: paths.brokerCa, data: resp.brokerCaPem, mode: 0o644 },
        { path: paths.trustRoot, data: JSON.stringify(resp.trustRootJwk) + '\n', mode: 0o644 },
        { path: paths.trustBundle, data: resp.trustBundle, mode: 0o644 },
      ],
    }),
  );
  rmSync(pendingFile, { force: true });
  step(`installed into ${paths.root} (key 0600, directories 0700)`);

  // 7. The agent's own start checks on what is now on disk.
  const id = checkIdentity({ paths, expectedSerial: serial, clock });
  const claimCode = withDiskErrors('making the claim code', () =>
    ensureClaimSecret(paths, out, opts.force ?? false),
  );
  step(`done: ${id.serial} provisioned; certificate valid until ${id.notAfter.toISOString()}`);
  return {
    status: 'provisioned',
    serial: id.serial,
    notAfter: id.notAfter,
    ...(claimCode ? { claimCode } : {}),
  };
}

/**
 * The label's claim code: made on the device once (a re-provision with --force makes a new one),
 * stored 0600, printed here once — it never goes to the cloud. Returns it when made now.
 */
function ensureClaimSecret(
  paths: StateLayout,
  out: (line: string) => void,
  force: boolean,
): string | undefined {
  if (!force && existsSync(paths.claimSecret)) return undefined;
  const code = formatClaimCode(randomBytes(CLAIM_SECRET_BYTES));
  writeClaimSecret(paths, code);
  out(
    `claim code for the label (printed once; the owner types or scans it to claim; it never goes to the cloud): ${code}`,
  );
  return code;
}

function readPending(
  file: string,
): { serial: string; keyPem: string; stoppedAt?: string | undefined } | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const p = JSON.parse(readFileSync(file, 'utf8')) as {
      serial?: unknown;
      keyPem?: unknown;
      stoppedAt?: unknown;
    };
    if (typeof p.serial === 'string' && typeof p.keyPem === 'string')
      return {
        serial: p.serial,
        keyPem: p.keyPem,
        stoppedAt:
          typeof p.stoppedAt === 'string' && /^ERR_[A-Z_]+$/.test(p.stoppedAt) ? p.stoppedAt : undefined,
      };
  } catch {
    /* torn or foreign: start clean */
  }
  return undefined;
}

/** Checks a provisioning response against the key we hold; throws ERR_PROVISION_* / ERR_IDENTITY_*. */
export function verifyResponse(resp: ProvisionResponse, m: { keyPem: string; serial: string; now: number }) {
  const serverTime = Date.parse(resp.serverTime);
  if (Number.isFinite(serverTime) && Math.abs(serverTime - m.now) > MAX_CLOCK_SKEW_MS) {
    throw new LenscapError(
      CLIENT_ERRORS.clockSkew,
      `this camera's clock (${new Date(m.now).toISOString()}) is ${Math.round(Math.abs(serverTime - m.now) / 60_000)} min away from the service's (${new Date(serverTime).toISOString()}); set the clock (NTP or date -s) and re-run with the same token`,
    );
  }
  let facts;
  try {
    facts = checkMaterial({
      keyPem: m.keyPem,
      certPem: resp.certPem,
      chainPem: resp.chainPem,
      caPem: resp.deviceCaPem,
      expectedSerial: m.serial,
      now: m.now,
      where: 'provisioning response',
    });
  } catch (err) {
    if (err instanceof LenscapError)
      throw new LenscapError(
        CLIENT_ERRORS.verify,
        `the service's certificate was refused (${err.code}): ${err.message}`,
        { cause: err.code },
      );
    throw err;
  }
  let trustVersion: number;
  try {
    trustVersion = verifyTrustBundle(resp.trustBundle, resp.trustRootJwk).version;
  } catch (err) {
    throw new LenscapError(
      CLIENT_ERRORS.verify,
      `the service's trust bundle was refused: ${describeError(err)}`,
    );
  }
  return { ...facts, trustVersion };
}
