/**
 * `lenscap-dev`: the local development cloud in the foreground until Ctrl-C/SIGTERM. By
 * default the whole stack (provisioning, mTLS broker, grant endpoint, viewer page: cloud.ts
 * startStack); `--provisioning-only` runs just the identity side (CA + HTTPS provisioning and
 * renewal), e.g. on a fixed port for a factory bench.
 * Development only; listens on 127.0.0.1 unless --host says otherwise.
 */
import { LenscapError } from '../../../agent/errors.ts';
import { createLogger } from '../../../agent/log.ts';
import { parseOptions, type CliIo, type Command } from '../../../agent/cli/command.ts';

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(sig);
    };
    const onInt = on('SIGINT');
    const onTerm = on('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

function printProvisioning(io: CliIo, devDir: string, url: string, caFile: string): void {
  io.out(`dev cloud state:       ${devDir}`);
  io.out(`provisioning service:  ${url}`);
  io.out(`provisioning CA:       ${caFile}`);
  io.out('provision a camera:');
  io.out(`  TOKEN=$(npx lenscap-dev token --serial CAM-0001 --dev-dir ${devDir})`);
  io.out(
    `  lenscap provision --serial CAM-0001 --url ${url} --token "$TOKEN" --ca ${caFile} --state-dir DIR`,
  );
}

export const devCloudCommand: Command = {
  name: '',
  summary: 'Run the local development cloud.',
  help: `usage: lenscap-dev [--dev-dir DIR] [--provisioning-only [--host H] [--port P]] [--broker aedes|mosquitto] [--page-port P]

Runs the local development cloud until Ctrl-C: the device CA and the HTTPS provisioning service
(one-time tokens, renewal over mTLS), the mTLS broker, the grant endpoint and the viewer page.
State (CAs, keys, tokens) lives in DIR (default ./.lenscap/dev) and is reused across runs.
--provisioning-only runs only the CA and the provisioning/renewal service (default 127.0.0.1, any
free port; the server certificate names --host too when it is not loopback).
Tokens: npx lenscap-dev token --serial CAM-0001`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      'dev-dir': { type: 'string' },
      'provisioning-only': { type: 'boolean' },
      host: { type: 'string' },
      port: { type: 'string' },
      broker: { type: 'string' },
      'page-port': { type: 'string' },
    });
    const { DEFAULT_DEV_DIR, devLayout } = await import('../layout.ts');
    const devDir = devLayout(values['dev-dir'] ?? DEFAULT_DEV_DIR).root;
    const port = values.port === undefined ? 0 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--port must be 0..65535, found ${JSON.stringify(values.port)}`,
      );
    const logger = createLogger({ level: process.env.LENSCAP_DEV_LOG_LEVEL ?? 'warn' });

    if (values['provisioning-only']) {
      const { startDevCloudIdentity } = await import('../server.ts');
      const id = await startDevCloudIdentity({ devDir, host: values.host ?? '127.0.0.1', port, logger });
      printProvisioning(io, devDir, id.provisioningUrl, id.provisioningCaFile);
      io.out('ready (Ctrl-C stops)');
      const sig = await untilSignal();
      await id.close();
      io.out(`stopped (${sig})`);
      return 0;
    }
    if (values.host || values.port)
      throw new LenscapError('ERR_CLI_USAGE', '--host/--port apply to --provisioning-only');
    const broker = values.broker ?? 'aedes';
    if (broker !== 'aedes' && broker !== 'mosquitto')
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--broker must be aedes or mosquitto, found ${JSON.stringify(broker)}`,
      );
    const pagePort = values['page-port'] === undefined ? undefined : Number(values['page-port']);
    const { startStack } = await import('../cloud.ts');
    const stack = await startStack({
      dir: devDir,
      broker,
      ...(pagePort !== undefined ? { pagePort } : {}),
      logger,
    });
    printProvisioning(io, devDir, stack.provisioningUrl, stack.provisioningCaFile);
    io.out(`broker:                ${stack.brokerUrl} (${stack.brokerKind}, mTLS)`);
    io.out(`viewer page:           ${stack.pageUrl}`);
    io.out('ready (Ctrl-C stops)');
    const sig = await untilSignal();
    await stack.close();
    io.out(`stopped (${sig})`);
    return 0;
  },
};
