/**
 * The provisioning wire format, shared by the camera (agent/identity/provision.ts, renew.ts) and the
 * dev provisioning service (scripts/dev-cloud/provisioning-service.ts). JSON over HTTPS.
 *
 *   POST /v1/provision   {serial, token, csr}         → 200 ProvisionResponse
 *        The one-time token is bound to a serial and an expiry. A token is spent by its first
 *        successful use; presenting it again with a CSR for the SAME public key returns the same
 *        response (idempotent redemption: a camera that lost power after the POST can finish);
 *        any other reuse is ERR_PROVISION_TOKEN_USED.
 *   POST /v1/renew       {csr}   over mTLS with the current device cert → 200 RenewResponse
 *        The CSR's CN must equal the client certificate's CN.
 *   Errors: non-2xx with {error: {code, message}}; codes below. Messages never echo the token.
 *
 * Must never carry a private key: only CSRs go up, only certificates and public keys come down.
 */
import { z } from 'zod';

export const PROVISION_PATH = '/v1/provision';
export const RENEW_PATH = '/v1/renew';

export const provisionRequest = z.object({
  serial: z.string().min(1).max(64),
  token: z.string().min(1).max(256),
  csr: z.string().min(1).max(16_384),
});
export type ProvisionRequest = z.infer<typeof provisionRequest>;

export const renewRequest = z.object({ csr: z.string().min(1).max(16_384) });
export type RenewRequest = z.infer<typeof renewRequest>;

const certFields = {
  serial: z.string(),
  /** The device certificate, PEM. */
  certPem: z.string().min(1),
  /** Intermediates up to the device CA, PEM ('' when the device CA signs directly). */
  chainPem: z.string(),
  /** The device CA the camera pins. */
  deviceCaPem: z.string().min(1),
  /** The service's clock (ISO 8601): the camera refuses to install when its own is far off. */
  serverTime: z.string(),
};

export const provisionResponse = z.object({
  ...certFields,
  /** The only trust for the broker's TLS certificate. */
  brokerCaPem: z.string().min(1),
  /** The cloud's trust-root public key (JWK) and the trust bundle it signed. */
  trustRootJwk: z.record(z.string(), z.unknown()),
  trustBundle: z.string().min(1),
  /** Where to renew (mTLS); default: the provisioning URL's origin + RENEW_PATH. */
  renewUrl: z.string().optional(),
});
export type ProvisionResponse = z.infer<typeof provisionResponse>;

export const renewResponse = z.object(certFields);
export type RenewResponse = z.infer<typeof renewResponse>;

export const errorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** Codes the service returns (HTTP status in the comment). */
export const SERVICE_ERRORS = {
  tokenInvalid: 'ERR_PROVISION_TOKEN_INVALID', // 401 unknown / wrong token
  tokenExpired: 'ERR_PROVISION_TOKEN_EXPIRED', // 401
  tokenUsed: 'ERR_PROVISION_TOKEN_USED', // 409
  serialNotAllowed: 'ERR_PROVISION_SERIAL_NOT_ALLOWED', // 403 token is for another serial
  badRequest: 'ERR_PROVISION_BAD_REQUEST', // 400 malformed JSON, bad CSR, CSR CN ≠ serial
  renewUnauthenticated: 'ERR_RENEW_UNAUTHENTICATED', // 401 no / untrusted / expired client cert
  renewSerialMismatch: 'ERR_RENEW_SERIAL_MISMATCH', // 403 CSR CN ≠ client cert CN
} as const;

/** Codes only the camera raises. */
export const CLIENT_ERRORS = {
  unreachable: 'ERR_PROVISION_UNREACHABLE',
  tls: 'ERR_PROVISION_TLS',
  clockSkew: 'ERR_PROVISION_CLOCK_SKEW',
  diskFull: 'ERR_PROVISION_DISK_FULL',
  badResponse: 'ERR_PROVISION_BAD_RESPONSE',
  verify: 'ERR_PROVISION_VERIFY_FAILED',
  usage: 'ERR_PROVISION_USAGE',
  alreadyProvisioned: 'ERR_PROVISION_ALREADY',
} as const;

/** How far the camera's clock may be from the service's before provisioning refuses. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
