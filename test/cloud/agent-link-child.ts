/**
 * A minimal agent for the last-will test: a cloud link in its own process, so the test can SIGKILL
 * it. Args: <stateDir> <url> <serial> [4 for MQTT 3.1.1]. Prints "online" once connected.
 */
import { stateLayout } from '../../agent/state-layout.ts';
import { makeLink, testConfig } from './fixture.ts';

const [root, url, serial, version] = process.argv.slice(2) as [string, string, string, string?];
const { link } = makeLink({
  serial,
  paths: stateLayout(root),
  config: testConfig(url, version === '4' ? { protocolVersion: 4 } : {}),
});
link.on('online', () => process.stdout.write('online\n'));
link.start();
