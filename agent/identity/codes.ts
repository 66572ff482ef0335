/**
 * The identity room's closed error codes, each with when it happens and what the technician does.
 * docs/identity.md's code tables are generated from these (`npm run docs:codes`; a test compares).
 * Must never import anything: it is data every layer (errors.ts, the docs generator) may read.
 */

/** `lenscap run` refuses to start with one of these, before anything else runs. */
export const IDENTITY_START_CODES = {
  ERR_IDENTITY_MISSING: {
    when: 'key, certificate, device CA or broker CA absent',
    fix: '`lenscap provision`',
  },
  ERR_IDENTITY_KEY_PERMISSIONS: {
    when: '`device.key` or `identity/` readable/writable by group or others (like ssh: key 0600, dir 0700)',
    fix: '`chmod 0600 …/device.key; chmod 0700 …/identity`, and ask who could have read it',
  },
  ERR_STATE_PERMISSIONS: {
    when: 'the state dir, or any dir or file in it, is writable by group or others (a world-writable state dir let another user swap `trust/` and mint grants the camera accepted)',
    fix: '`chmod go-w <path>` (the error names it), and check what was changed',
  },
  ERR_STATE_OWNER: {
    when: "an entry of the state tree is owned by neither the agent's user nor root",
    fix: '`chown` it back (the error names it), and ask who put it there',
  },
  ERR_STATE_SYMLINK: {
    when: 'a symlink anywhere in the state tree (checked with `lstat`, never followed) — e.g. `trust/` or `audit/decisions.jsonl` pointing elsewhere',
    fix: 'remove it and restore the real file or directory',
  },
  ERR_STATE_NOT_REGULAR: {
    when: 'a trust, binding, floor, audit, replay or event file that is not a regular file (or a dir that is not a dir; FIFOs and devices anywhere)',
    fix: 'restore the file',
  },
  ERR_STATE_TREE_TOO_LARGE: {
    when: 'more than 10,000 entries or nesting deeper than 8: not a lenscap state dir',
    fix: 'point `stateDir` at the right place',
  },
  ERR_IDENTITY_INVALID: {
    when: 'a file does not parse, no CN',
    fix: 're-provision with `--force`',
  },
  ERR_IDENTITY_KEY_MISMATCH: {
    when: "the key is not the certificate's key",
    fix: 're-provision with `--force`',
  },
  ERR_IDENTITY_UNTRUSTED_CA: {
    when: 'the certificate does not chain to `device-ca.pem`',
    fix: 're-provision with `--force`',
  },
  ERR_IDENTITY_CERT_EXPIRED: {
    when: "now ≥ notAfter (by the camera's clock)",
    fix: 'fix the clock if wrong, else re-provision',
  },
  ERR_IDENTITY_CERT_NOT_YET_VALID: {
    when: 'now < notBefore',
    fix: 'fix the clock (NTP)',
  },
  ERR_IDENTITY_SERIAL_MISMATCH: {
    when: 'config `serial` is set and differs from the CN',
    fix: 'fix the config, or the camera has the wrong identity',
  },
  ERR_PIN_INVALID: {
    when: "the image's `certs/` holds a private key, a stray file, or a pin that does not parse (certs/README.md)",
    fix: 'rebuild the image with a correct `--pin` folder',
  },
  ERR_TRUST_PIN_MISMATCH: {
    when: "a pinned image met a trust root, broker CA or `--ca` that does not chain to its pins (at start: the state dir's trust root; in `lenscap provision`: what the service delivered, nothing installed)",
    fix: 'provision against the service the image was built for; rotate keys with a trust bundle signed by the pinned root',
  },
} as const satisfies Record<string, { when: string; fix: string }>;

/** `lenscap provision` and the provisioning service's answers. */
export const PROVISION_CODES = {
  ERR_PROVISION_TOKEN_INVALID: {
    when: 'unknown or mistyped token',
    fix: 'copy the token again, or make a new one',
  },
  ERR_PROVISION_TOKEN_EXPIRED: { when: "the token's time is up", fix: 'make a new token' },
  ERR_PROVISION_TOKEN_USED: {
    when: 'already used by another key',
    fix: 'make a new token (and find out who used it)',
  },
  ERR_PROVISION_SERIAL_NOT_ALLOWED: {
    when: 'the token is for another serial',
    fix: 'check the label vs the token',
  },
  ERR_PROVISION_BAD_REQUEST: {
    when: 'the service refused the request: bad JSON, bad or forged CSR, CSR CN ≠ serial, weak key',
    fix: 're-run; if it persists, a client bug: escalate',
  },
  ERR_PROVISION_UNREACHABLE: {
    when: 'no TCP connection / timeout',
    fix: 'network cable, Wi-Fi, URL, firewall',
  },
  ERR_PROVISION_TLS: {
    when: "the message says which: **not a TLS port** (an HTTP or MQTT port answered); **the server asked for a client certificate** (a mutual-TLS port: renewal or the broker, not provisioning); **not signed by `--ca`**; the certificate does not name the URL's host; or it looks expired",
    fix: 'the right port in `--url`; the right `--ca`; the host the certificate names; check the clock',
  },
  ERR_PROVISION_CLOCK_SKEW: {
    when: "camera clock > 5 min from the service's, or so far behind that the service's certificate is not yet valid",
    fix: 'set the clock, re-run with the same token',
  },
  ERR_PROVISION_DISK_FULL: { when: 'ENOSPC/EDQUOT while writing', fix: 'free space (`df -h`), re-run' },
  ERR_PROVISION_STATE_DIR: {
    when: 'state dir not writable (read-only filesystem)',
    fix: 'remount / another `--state-dir`',
  },
  ERR_PROVISION_VERIFY_FAILED: {
    when: 'what the service sent failed verification',
    fix: 'wrong service, or a service bug: escalate',
  },
  ERR_PROVISION_BAD_RESPONSE: {
    when: 'not a provisioning service answer (also: an error code the protocol does not define)',
    fix: 'check `--url`',
  },
  ERR_PROVISION_ALREADY: {
    when: 'valid identity for another serial',
    fix: 'check the label; `--force` to replace',
  },
  ERR_PROVISION_USAGE: { when: 'bad arguments', fix: 'see `lenscap provision --help`' },
} as const satisfies Record<string, { when: string; fix: string }>;

/** Certificate renewal (the agent retries at the next check) and the crash-safe install. */
export const RENEW_CODES = {
  ERR_RENEW_NO_URL: {
    when: 'neither `identity.renewUrl` nor `provisioning.json` names a renewal URL',
    fix: 'set `identity.renewUrl`, or re-provision',
  },
  ERR_RENEW_BAD_RESPONSE: {
    when: 'the renewal answer is malformed',
    fix: 'wrong service, or a service bug: escalate',
  },
  ERR_RENEW_NOT_NEWER: {
    when: 'the new certificate would not outlive the current one',
    fix: "check the service's clock and validity period",
  },
  ERR_RENEW_UNAUTHENTICATED: {
    when: 'the service refused the mTLS client certificate (none, expired, foreign, not a device cert)',
    fix: 'if expired: re-provision',
  },
  ERR_RENEW_SERIAL_MISMATCH: {
    when: "the CSR's CN differs from the certificate's CN",
    fix: 'a client bug: escalate',
  },
  ERR_RENEW_FAILED: { when: 'any other renewal failure (logged with its cause)', fix: 'read the log line' },
  ERR_IDENTITY_INSTALL: {
    when: 'an install manifest points outside the state dir',
    fix: 'remove `.identity-staging/` and re-provision',
  },
} as const satisfies Record<string, { when: string; fix: string }>;

export type IdentityCode =
  keyof typeof IDENTITY_START_CODES | keyof typeof PROVISION_CODES | keyof typeof RENEW_CODES;

/** Codes the provisioning service may send back; anything else is ERR_PROVISION_BAD_RESPONSE. */
export const SERVICE_CODES: ReadonlySet<string> = new Set<IdentityCode>([
  'ERR_PROVISION_TOKEN_INVALID',
  'ERR_PROVISION_TOKEN_EXPIRED',
  'ERR_PROVISION_TOKEN_USED',
  'ERR_PROVISION_SERIAL_NOT_ALLOWED',
  'ERR_PROVISION_BAD_REQUEST',
  'ERR_RENEW_UNAUTHENTICATED',
  'ERR_RENEW_SERIAL_MISMATCH',
]);
