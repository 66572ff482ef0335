#!/usr/bin/env node
// Host side of a QEMU guestfwd: QEMU runs this once per guest connection with the connection on
// stdin/stdout; it joins it to one port on host loopback. Only loopback: the guest reaches what
// the test forwards and nothing else (the netdev has restrict=on).
// Usage (inside -netdev): guestfwd=tcp:10.0.2.100:PORT-cmd:node pipe-to-port.mjs PORT
import net from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) process.exit(2);
const sock = net.connect({ host: '127.0.0.1', port });
process.stdin.pipe(sock);
sock.pipe(process.stdout);
sock.on('error', () => process.exit(0));
sock.on('close', () => process.exit(0));
process.stdin.on('end', () => sock.end());
