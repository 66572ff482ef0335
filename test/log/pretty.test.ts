/**
 * `log.pretty: true` where no pretty printer is installed (a device bundle ships no pino-pretty):
 * the agent logs JSON and says so once per process at warn, instead of ignoring the setting.
 * The bundle test runs the same against the extracted bundle's compiled logger.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../agent/log.ts';

test('log.pretty without a pretty printer: JSON, and one warning for the whole process', () => {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  const none = () => undefined;
  const a = createLogger({ pretty: true, destination, loadPretty: none });
  const b = createLogger({ pretty: true, destination, loadPretty: none, serial: 'CAM-1' });
  a.info('first');
  b.info('second');
  const warnings = lines.filter((l) => l.code === 'LOG_PRETTY_UNAVAILABLE');
  assert.equal(warnings.length, 1, JSON.stringify(lines));
  assert.equal(warnings[0]!.level, 40);
  assert.match(String(warnings[0]!.msg), /log\.pretty is true but no pretty printer is installed/);
  assert.deepEqual(
    lines.filter((l) => !l.code).map((l) => l.msg),
    ['first', 'second'],
  );
  // Not asked for pretty: no warning at all.
  const quiet: string[] = [];
  const q = createLogger({
    destination: new Writable({ write: (c: Buffer, _e, cb) => (quiet.push(c.toString()), cb()) }),
    loadPretty: none,
  });
  q.info('x');
  assert.equal(quiet.length, 1);
});
