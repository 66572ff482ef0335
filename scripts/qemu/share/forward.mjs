// Guest side of the test's port forwarding (runs in the guest under node): listens on guest
// loopback on each given port and joins every connection to the same port at 10.0.2.100, where
// QEMU's guestfwd hands it to host loopback. So the agent in the guest uses the very URLs the host's
// dev cloud prints (127.0.0.1:PORT) and the TLS names in its certificates still match.
// Test harness only: never part of a bundle.
// Usage: node forward.mjs PORT [PORT...]
import net from 'node:net';

for (const port of process.argv.slice(2).map(Number)) {
  net
    .createServer((c) => {
      const up = net.connect({ host: '10.0.2.100', port });
      c.pipe(up).pipe(c);
      const end = () => {
        c.destroy();
        up.destroy();
      };
      c.on('error', end);
      up.on('error', end);
    })
    .listen(port, '127.0.0.1', () => console.log(`forward 127.0.0.1:${port} -> 10.0.2.100:${port}`));
}
