// QEMU board test, guest side: the bundle's systemd watchdog (dist/agent/systemd/watchdog.js) under
// the real systemd of the board, in a transient unit with the agent unit's Type/NotifyAccess and a
// short WatchdogSec. Runs 4 watchdog periods; if pings were lost, systemd kills it (SIGABRT) and the
// unit's Result says watchdog. Usage: node watchdog-check.mjs /opt/lenscap SECONDS
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const app = process.argv[2] ?? '/opt/lenscap';
const seconds = Number(process.argv[3] ?? 12);
const { createWatchdog } = await import(pathToFileURL(join(app, 'dist/agent/systemd/watchdog.js')).href);
const logger = { info: (o, m) => console.log(m, JSON.stringify(o)), warn: (o, m) => console.log('WARN', m, JSON.stringify(o)), debug() {}, error: (o, m) => console.log('ERROR', m, JSON.stringify(o)) };
const wd = createWatchdog({ logger });
console.log(`enabled=${wd.enabled} intervalMs=${wd.intervalMs}`);
if (!wd.enabled || wd.intervalMs === 0) process.exit(3);
await wd.start();
// Keep the event loop busy the way the agent would (timers), not blocked.
await new Promise((r) => setTimeout(r, seconds * 1000));
await wd.stop();
console.log('clean exit');
