/**
 * The TCP ports this process listens on, read from the kernel (Linux /proc), not from what the
 * code under test says about itself: a listening socket in /proc/net/tcp{,6} whose inode is one
 * of this process's open file descriptors. Tests use it to prove a component opens no port.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface ListeningSocket {
  address: string;
  port: number;
}

function socketInodes(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      /* closed while we looked */
    }
  }
  return out;
}

/** Every TCP socket in LISTEN state (0A) owned by this process, IPv4 and IPv6. */
export function listeningSockets(): ListeningSocket[] {
  const mine = socketInodes();
  const out: ListeningSocket[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !mine.has(f[9]!)) continue;
      const [addr = '', port = '0'] = f[1]!.split(':');
      out.push({ address: addr, port: parseInt(port, 16) });
    }
  }
  return out;
}

/** The listening ports of this process, sorted. */
export function listeningPorts(): number[] {
  return [...new Set(listeningSockets().map((s) => s.port))].sort((a, b) => a - b);
}
