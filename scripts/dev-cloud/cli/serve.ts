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
import { boardAgentJson, DEV_PORTS } from '../board-config.ts';

/** A port flag: 0..65535 (0 = any free port), or the default when absent. */
function portOption(name: string, raw: string | undefined, dflt: number): number {
  if (raw === undefined) return dflt;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535)
    throw new LenscapError('ERR_CLI_USAGE', `--${name} must be 0..65535, found ${JSON.stringify(raw)}`);
  return port;
}

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
  help: `usage: lenscap-dev [--dev-dir DIR] [--host H] [--broker aedes|mosquitto]
                   [--provisioning-port P] [--broker-port P] [--page-port P]
                   [--board-state-dir DIR] [--camera-driver v4l2|testpattern|auto]
       lenscap-dev --provisioning-only [--dev-dir DIR] [--host H] [--port P]

Runs the local development cloud until Ctrl-C: the device CA and the HTTPS provisioning service
(one-time tokens, renewal over mTLS), the mTLS broker, the grant endpoint and the viewer page.
State (CAs, keys, tokens) lives in DIR (default ./.lenscap/dev) and is reused across runs.
Ports are the same on every start, so a camera's saved renewal URL, its broker URL and the page's
origin survive a restart: provisioning ${DEV_PORTS.provisioning}, broker ${DEV_PORTS.broker}, page ${DEV_PORTS.page}
(0 = any free port). --host H (default 127.0.0.1) is where provisioning and the broker listen and
the name their certificates carry: give this machine's address for a board on the network.
At start it prints a complete agent.json for a board against this dev cloud (state dir
--board-state-dir, default /var/lib/lenscap; camera --camera-driver, default v4l2).
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
      'provisioning-port': { type: 'string' },
      'broker-port': { type: 'string' },
      'board-state-dir': { type: 'string' },
      'camera-driver': { type: 'string' },
    });
    const { DEFAULT_DEV_DIR, devLayout } = await import('../layout.ts');
    const devDir = devLayout(values['dev-dir'] ?? DEFAULT_DEV_DIR).root;
    const port = portOption('port', values.port, 0);
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
    if (values.port)
      throw new LenscapError(
        'ERR_CLI_USAGE',
        '--port applies to --provisioning-only; the whole dev cloud takes --provisioning-port',
      );
    const cameraDriver = values['camera-driver'] ?? 'v4l2';
    if (cameraDriver !== 'v4l2' && cameraDriver !== 'testpattern' && cameraDriver !== 'auto')
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--camera-driver must be v4l2, testpattern or auto, found ${JSON.stringify(cameraDriver)}`,
      );
    const broker = values.broker ?? 'aedes';
    if (broker !== 'aedes' && broker !== 'mosquitto')
      throw new LenscapError(
        'ERR_CLI_USAGE',
        `--broker must be aedes or mosquitto, found ${JSON.stringify(broker)}`,
      );
    const { startStack } = await import('../cloud.ts');
    const stack = await startStack({
      dir: devDir,
      broker,
      ...(values.host ? { host: values.host } : {}),
      pagePort: portOption('page-port', values['page-port'], DEV_PORTS.page),
      provisioningPort: portOption('provisioning-port', values['provisioning-port'], DEV_PORTS.provisioning),
      brokerPort: portOption('broker-port', values['broker-port'], DEV_PORTS.broker),
      logger,
    });
    printProvisioning(io, devDir, stack.provisioningUrl, stack.provisioningCaFile);
    io.out(`broker:                ${stack.brokerUrl} (${stack.brokerKind}, mTLS)`);
    io.out(`viewer page:           ${stack.pageUrl}`);
    io.out('agent.json for a board against this dev cloud (provision it first, as above):');
    const board = boardAgentJson({
      brokerUrl: stack.brokerUrl,
      brokerKind: broker, // a board needs a broker on the network: aedes or mosquitto only
      stateDir: values['board-state-dir'] ?? '/var/lib/lenscap',
      cameraDriver,
    });
    for (const line of JSON.stringify(board, null, 2).split('\n')) io.out(line);
    io.out(`claim it: npx lenscap-dev bind --serial CAM-0001 --owner alice --send --dev-dir ${devDir}`);
    io.out('ready (Ctrl-C stops)');
    const sig = await untilSignal();
    await stack.close();
    io.out(`stopped (${sig})`);
    return 0;
  },
};
