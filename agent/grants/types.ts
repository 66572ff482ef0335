/**
 * The contract between the grant gate (agent/grants) and its callers (viewer gate, cloud commands,
 * CLI). Callers hand in a token and where it came from; they get back accept-with-claims or a
 * reason from the closed set. Callers never look inside a token themselves.
 */
import type { RefusalReason } from './reasons.ts';

export type GrantScope = 'live' | 'relay';

export interface GrantClaims {
  iss: string;
  /** Always this camera's serial when accepted. */
  aud: string;
  /** Viewer id. */
  sub: string;
  jti: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
  nbf?: number;
  scope: string;
  /** Push mode only: rtmp:// or rtmps:// URL the camera pushes to. */
  relay?: string;
  /** Owner-held mode: the RFC 7638 thumbprint of the viewer's key (RFC 7800 / 9449). */
  cnf?: { jkt: string };
}

/** A DPoP proof (RFC 9449) presented with a grant, and the request it must be for. */
export interface PresentedProof {
  /** The compact `dpop+jwt`, or undefined when none was presented. */
  dpop: string | undefined;
  /** `GET` at the viewer gate, `PUSH` for `cmd/stream.start`. */
  htm: string;
  /** The request URL without query (viewer gate) or `urn:lenscap:push:<serial>` (push). */
  htu: string;
}

/** Where a viewer's request reached the camera, typed: the viewer gate's side of a decision. */
export interface ViewerOrigin {
  /** The peer address as the socket reports it. */
  remote: string;
  transport: 'http' | 'ws';
}

/** The printed source of a viewer gate decision, as audit lines and events have always carried it. */
export function gateSource(viewer: ViewerOrigin): string {
  return `gate:${viewer.remote}`;
}

/** Where a command carrying a grant reached the camera, typed: the command side of a decision. */
export interface CommandOrigin {
  /** The cloud link's MQTT command topic, or the local CLI. */
  via: 'mqtt' | 'cli';
  /** The command's op or verb, e.g. `stream.start`. */
  op: string;
}

/** The printed source of a command's decision (`mqtt:stream.start`), as audit lines and events carry it. */
export function commandSource(command: CommandOrigin): string {
  return `${command.via}:${command.op}`;
}

export interface DecisionContext {
  /**
   * The printed origin for audit lines, events and refusal damping: `gate:<addr>` (derived from
   * `viewer` with `gateSource`), `mqtt:<op>` (derived from `command` with `commandSource`),
   * `cli:<verb>`, `state:<file>`.
   */
  source: string;
  /** Set by the viewer gate: the viewer's address and transport as typed fields. */
  viewer?: ViewerOrigin;
  /** Set by push (`cmd/stream.start`): the command's channel and op as typed fields. */
  command?: CommandOrigin;
  /** What the caller is about to do with the grant. `relay` requires a relay claim. */
  purpose: 'view' | 'push';
  /** The DPoP proof that came with the grant (owner-held mode requires it). */
  proof?: PresentedProof;
}

export type Decision =
  | {
      ok: true;
      claims: GrantClaims;
      /** Owner-held mode: the accepted proof, for the gate to consume its id. */
      proof?: { jkt: string; jti: string; iat: number };
    }
  | {
      ok: false;
      reason: RefusalReason;
      /** Human detail for logs (never the token). */
      detail: string;
      /**
       * True when the grant's signature held (the refusal concerns the cloud's own word); such
       * refusals are always recorded one by one, unauthenticated junk may be counted instead.
       */
      signed?: boolean;
      /** Whatever could be read from an unverified token, for the audit/misroute alarm. */
      jti?: string;
      sub?: string;
      claimedAud?: string;
    };

/**
 * The one decision point. Implementations must be fail-closed: any exception inside becomes a
 * refusal, never an accept. Accepting a grant consumes its jti (single use).
 */
export interface GrantGate {
  decide(token: string | undefined, ctx: DecisionContext): Promise<Decision>;
}
