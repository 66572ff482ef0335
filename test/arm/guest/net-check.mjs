// QEMU board test, guest side: the network plumbing the full flow relies on.
// 1. guestfwd: a host loopback service is reachable in the guest at 127.0.0.1:PORT (through
//    forward.mjs → 10.0.2.100 → QEMU → host 127.0.0.1:PORT).
// 2. restrict=on: the same host port is NOT reachable through the slirp gateway (10.0.2.2), nor is
//    anything outside.
// 3. hostfwd: serves on 0.0.0.0:GUEST_PORT until the host has fetched (share file net-host-fetched).
// Usage: node net-check.mjs SHARE HOST_PORT GUEST_PORT
import http from 'node:http';
import net from 'node:net';
import { existsSync, appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [share, hostPort, guestPort] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const mark = (name) =>
  appendFileSync(join(share, 'marks'), `${name} ${readFileSync('/proc/uptime', 'utf8').split(' ')[0]}\n`);
const fail = (msg) => {
  console.log(`FAIL: ${msg}`);
  process.exit(1);
};

const get = (host, port) =>
  new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', timeout: 5000 }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
const connects = (host, port) =>
  new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(false));
  });

const body = await get('127.0.0.1', hostPort).catch((e) =>
  fail(`guestfwd: host service not reachable via 127.0.0.1:${hostPort}: ${e.message}`),
);
if (body !== 'lenscap-host-ok') fail(`guestfwd: unexpected answer ${JSON.stringify(body)}`);
console.log(`ok: host loopback service reachable in the guest (guestfwd, port ${hostPort})`);
if (await connects('10.0.2.2', hostPort))
  fail('restrict=on: host port reachable through the slirp gateway 10.0.2.2');
if (await connects('1.1.1.1', 80)) fail('restrict=on: the outside world is reachable');
console.log('ok: restrict=on: no route to the host gateway or the outside');

const server = http.createServer((_req, res) => res.end('lenscap-guest-ok'));
server.listen(guestPort, '0.0.0.0', () => mark('net-guest-listening'));
const deadline = Date.now() + 120000;
const t = setInterval(() => {
  if (existsSync(join(share, 'net-host-fetched'))) {
    clearInterval(t);
    server.close();
    console.log('ok: host fetched from the guest (hostfwd)');
    process.exit(0);
  }
  if (Date.now() > deadline) fail('hostfwd: the host never fetched');
}, 200);
