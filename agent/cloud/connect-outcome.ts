/**
 * What a failed connection attempt means, in words a technician can act on, and whether the broker
 * refused the MQTT version we spoke (so the link may fall back from 5 to 3.1.1 once).
 * Pure. Must never put a certificate, key or payload into the text.
 */
import type { Outcome } from './backoff.ts';

/** MQTT 5 CONNACK/DISCONNECT reason codes a camera can meet. */
const V5_TEXT: Record<number, string> = {
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8b: 'server shutting down',
  0x8c: 'bad authentication method',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over (another client used this serial)',
  0x97: 'quota exceeded',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9f: 'connection rate exceeded',
};

/** MQTT 3.1.1 CONNACK return codes. */
const V4_TEXT: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

const hex = (code: number) => `0x${code.toString(16).padStart(2, '0')}`;

/**
 * True when the broker refused the protocol version itself. An MQTT 5 broker says 0x84; a broker
 * that speaks only 3.1.1 (aedes) answers an MQTT 5 CONNECT with the 3.1.1 return code 1, which
 * mqtt.js reads as reason code 0x01 because it parses the CONNACK as version 5.
 */
export function refusedProtocolVersion(o: Outcome): boolean {
  return o.kind === 'connack' && o.protocolVersion === 5 && (o.code === 0x84 || o.code === 0x01);
}

/** One readable line: "CONNACK 0x87 not authorized", "network: connect ECONNREFUSED 127.0.0.1:8883". */
export function describeOutcome(o: Outcome): string {
  if (o.kind === 'network') return `network: ${o.error ?? 'connection closed without a reason'}`;
  if (o.kind === 'disconnect')
    return `DISCONNECT ${hex(o.code)} ${V5_TEXT[o.code] ?? 'reason not known to this agent'}`;
  if (refusedProtocolVersion(o))
    return `CONNACK ${hex(o.code)} unsupported protocol version (the broker does not speak MQTT 5)`;
  const text = (o.protocolVersion === 5 ? V5_TEXT : V4_TEXT)[o.code];
  return `CONNACK ${hex(o.code)} ${text ?? 'reason not known to this agent'}`;
}
