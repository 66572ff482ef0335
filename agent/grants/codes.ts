/**
 * The grants room's closed error codes (signed trust material: trust root, trust bundle, binding
 * record, version floors, replay cache). Refusals of a grant are not errors: they are the closed
 * reasons in ./reasons.ts. docs/grants.md's code table is generated from this list.
 * Must never import anything: it is data every layer (errors.ts, the docs generator) may read.
 */
export const GRANTS_CODES = {
  ERR_TRUST_ROOT_MISSING: {
    when: '`trust/root.jwk.json` absent at start',
    fix: 'the camera was not provisioned with trust material: re-provision',
  },
  ERR_TRUST_ROOT_INVALID: {
    when: 'the pinned root key is not JSON or not a usable public key',
    fix: 're-provision',
  },
  ERR_TRUST_BUNDLE_MISSING: {
    when: '`trust/bundle.jws` absent at start',
    fix: 're-provision, or send `cmd/trust`',
  },
  ERR_TRUST_BUNDLE_INVALID: {
    when: 'a bundle not signed by the root, malformed, for another serial, or a key both issuer and binding key',
    fix: "the cloud's signing side: escalate",
  },
  ERR_TRUST_BUNDLE_ROLLBACK: {
    when: 'a bundle version at or below the floor (also at start: an on-disk bundle older than its floor)',
    fix: 'send the current bundle; a rollback attempt is a security event',
  },
  ERR_BINDING_INVALID: {
    when: 'a binding record not signed by a binding key, or malformed',
    fix: "the cloud's claim service: escalate",
  },
  ERR_BINDING_WRONG_SERIAL: {
    when: 'a binding record for another camera',
    fix: 'a misroute: the cloud alarms on it',
  },
  ERR_BINDING_ROLLBACK: {
    when: 'a binding record version at or below the floor',
    fix: 'send the current record; a rollback attempt is a security event',
  },
  ERR_VERSION_FLOORS_INVALID: {
    when: '`trust/floors.json` exists but does not parse: the agent refuses to start',
    fix: 'restore it from a backup or re-provision (an empty floor would reopen rollbacks)',
  },
  ERR_REPLAY_CACHE_FULL: {
    when: 'the replay cache is full of live grant ids: new grants are refused `rate_limited`',
    fix: 'wait for grants to expire; raise `grants.replayCacheMaxEntries` if it recurs',
  },
  ERR_GRANT_REFUSED: {
    when: 'a push (`cmd/stream.start`) whose grant was refused; the reason is in the detail',
    fix: 'read the refusal reason',
  },
} as const satisfies Record<string, { when: string; fix: string }>;

export type GrantsCode = keyof typeof GRANTS_CODES;
