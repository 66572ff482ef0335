/**
 * Which broker endpoint the next connection attempt goes to. `cloud.url` is one URL or a list (the
 * nodes of a broker cluster); a URL whose host is a name may resolve to several addresses (one per
 * node). The rotation starts at a random endpoint, so a fleet spreads over the nodes, stays where it
 * connected, and moves on after every failed attempt or lost connection: a dead node is left behind
 * on the next attempt, never retried before the others. Pure: randomness is injected, name
 * resolution is the link's (it reports the addresses here). Must never drop the TLS server name of a
 * URL when connecting to one of its resolved addresses (the certificate is checked against the name),
 * and must never choose the delay: that stays with ./backoff.ts.
 */
import net from 'node:net';
import type { Random } from '../clock.ts';
import { LenscapError } from '../errors.ts';

export interface Endpoint {
  /** Host as written in the URL (brackets of an IPv6 literal removed). */
  host: string;
  port: number;
  /** The URL as configured, for logs. */
  url: string;
}

/** One concrete place to connect to: an address (or name) and the name its certificate must carry. */
export interface Target {
  host: string;
  port: number;
  /** TLS server name; undefined for an IP literal URL (no SNI, the IP is checked). */
  servername: string | undefined;
  /** Index of the URL in the configured list. */
  index: number;
  url: string;
}

/** Parses `cloud.url` (one or several mqtts:// URLs) into endpoints; coded error on anything else. */
export function parseEndpoints(url: string | readonly string[]): Endpoint[] {
  const list = typeof url === 'string' ? [url] : [...url];
  if (list.length === 0) throw new LenscapError('ERR_CLOUD_NO_URL', 'cloud.url is an empty list');
  return list.map((u, i) => {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new LenscapError('ERR_CLOUD_URL', `cloud.url[${i}] is not a URL`);
    }
    if (!/^(mqtts|tls|ssl):$/.test(parsed.protocol) || !parsed.hostname)
      throw new LenscapError('ERR_CLOUD_URL', `cloud.url[${i}] must be mqtts://host[:port]`);
    return {
      host: parsed.hostname.replace(/^\[|\]$/g, ''),
      port: Number(parsed.port || 8883),
      url: `${parsed.protocol}//${parsed.host}`,
    };
  });
}

export class EndpointRotation {
  private i: number;
  /** Position among the current URL's resolved addresses. */
  private j = 0;
  private readonly addresses = new Map<number, string[]>();

  constructor(
    private readonly endpoints: readonly Endpoint[],
    random: Random,
    /** Overrides the server name of every URL (cloud.servername). */
    private readonly servername?: string,
  ) {
    if (endpoints.length === 0) throw new LenscapError('ERR_CLOUD_NO_URL', 'no broker endpoint');
    this.i = Math.min(endpoints.length - 1, Math.floor(random() * endpoints.length));
  }

  get size(): number {
    return this.endpoints.length;
  }

  /** The URL the next attempt belongs to. */
  endpoint(): Endpoint {
    return this.endpoints[this.i]!;
  }

  /** True when the next attempt starts on a URL whose name should be (re)resolved first. */
  needsLookup(): boolean {
    return this.j === 0 && net.isIP(this.endpoint().host) === 0;
  }

  /** The addresses the current URL's name resolved to (empty or failed lookup: the name itself). */
  learn(addresses: readonly string[]): void {
    this.addresses.set(this.i, [...new Set(addresses)]);
    this.j = 0;
  }

  current(): Target {
    const e = this.endpoint();
    const addrs = this.addresses.get(this.i);
    const isName = net.isIP(e.host) === 0;
    const servername = this.servername ?? (isName ? e.host : undefined);
    const host = addrs && addrs.length > 0 ? addrs[this.j % addrs.length]! : e.host;
    return { host, port: e.port, servername, index: this.i, url: e.url };
  }

  /** The attempt failed or the connection was lost: the next attempt goes elsewhere. */
  advance(): void {
    const addrs = this.addresses.get(this.i);
    if (addrs && this.j + 1 < addrs.length) {
      this.j++;
      return;
    }
    this.j = 0;
    this.i = (this.i + 1) % this.endpoints.length;
  }
}
