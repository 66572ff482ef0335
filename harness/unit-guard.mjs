// Preloaded by `npm run test:unit` (scripts/run-tests.mjs --unit): inside each test file's process,
// starting a program, opening a socket or calling fetch throws, so a file listed in the unit tier
// that needs the network or an external program fails loudly instead of slowing the tier down.
// Only the test runner's children are guarded (NODE_TEST_CONTEXT); the runner itself spawns them.
// Plain .mjs so it loads before tsx's hooks.
import childProcess from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { syncBuiltinESMExports } from 'node:module';

if (process.env.NODE_TEST_CONTEXT?.startsWith('child')) {
  const refuse = (what) =>
    function refused() {
      throw new Error(`unit tier: ${what} is not allowed (move this test out of the unit list)`);
    };
  for (const fn of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
    childProcess[fn] = refuse(`child_process.${fn}`);
  }
  net.Server.prototype.listen = refuse('listening on a socket');
  net.Socket.prototype.connect = refuse('connecting a socket');
  net.connect = net.createConnection = refuse('net.connect');
  dgram.createSocket = refuse('dgram.createSocket');
  globalThis.fetch = refuse('fetch');
  syncBuiltinESMExports();
}
