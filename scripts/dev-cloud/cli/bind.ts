/** `lenscap-dev bind`: sign a binding record (claims a camera for an owner and viewers). */
import { readFileSync, writeFileSync } from 'node:fs';
import { LenscapError } from '../../../agent/errors.ts';
import { parseOptions, type Command } from '../../../agent/cli/command.ts';
import { DEV_PORTS } from '../board-config.ts';
import type { ToolCode } from '../../dev-codes.ts';

/**
 * Delivers a binding record as the cloud would: the `binding` command over the dev cloud's broker,
 * with the dev cloud's own client identity; resolves on the camera's "ok", throws its refusal.
 */
async function sendBinding(o: {
  devDir: string;
  url: string;
  serial: string;
  record: string;
  timeoutMs: number;
}): Promise<void> {
  const { devLayout } = await import('../layout.ts');
  const { connectCloudClient } = await import('../cloud-client.ts');
  const paths = devLayout(o.devDir);
  let key: string, cert: string, ca: string;
  try {
    key = readFileSync(paths.cloudClientKey, 'utf8');
    cert = readFileSync(paths.cloudClientCert, 'utf8');
    ca = readFileSync(paths.provisioningCaFile, 'utf8');
  } catch {
    throw new LenscapError<ToolCode>(
      'ERR_DEV_CLOUD_STATE',
      `no dev cloud identity in ${paths.root} (run \`npx lenscap-dev\` first, with the same --dev-dir)`,
    );
  }
  const deadline = Date.now() + o.timeoutMs;
  const cloud = await connectCloudClient({ url: o.url, key, cert, ca, protocolVersion: 4 });
  try {
    await cloud.waitOnline(o.serial, Math.max(1, deadline - Date.now())).catch(() => {
      throw new LenscapError<ToolCode>(
        'ERR_CAMERA_OFFLINE',
        `${o.serial} is not online at ${o.url} (is the dev cloud running, and the camera connected to it?)`,
      );
    });
    const reply = await cloud.command(
      o.serial,
      'binding',
      { record: o.record },
      Math.max(1, deadline - Date.now()),
    );
    if (reply.status !== 'ok')
      throw new LenscapError<ToolCode>(
        'ERR_CLAIM_REFUSED',
        `${o.serial} refused the binding record: ${reply.error?.code ?? '?'} ${reply.error?.message ?? ''}`.trim(),
      );
  } finally {
    await cloud.close();
  }
}

export const devCloudBindCommand: Command = {
  name: 'bind',
  summary: 'Sign a binding record (claims a camera for an owner).',
  help: `usage: lenscap-dev bind --serial S --owner V [--viewer W ...] [--version N] [--out FILE] [--dev-dir DIR]
       lenscap-dev bind --serial S --owner V [--viewer W ...] --send [--broker-url URL] [--timeout SECONDS]

Signs a binding record {serial, owner, viewers, version, iat} with the development cloud's
binding key and prints it (or writes it to FILE). Versions must grow; the default is the current
time in milliseconds.
--send delivers it too: it connects to the running dev cloud's broker as the cloud (the
cloud-client certificate in DIR), sends the camera the \`binding\` command and waits for its
answer (the camera must be online). Prints "bound S to V" and exits 0, or the camera's refusal
code and exits 1. URL defaults to mqtts://127.0.0.1:${DEV_PORTS.broker} (the dev cloud's default).`,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      serial: { type: 'string' },
      owner: { type: 'string' },
      viewer: { type: 'string', multiple: true },
      version: { type: 'string' },
      out: { type: 'string' },
      'dev-dir': { type: 'string' },
      send: { type: 'boolean' },
      'broker-url': { type: 'string' },
      timeout: { type: 'string' },
    });
    if (!values.serial || !values.owner)
      throw new LenscapError<ToolCode>('ERR_CLI_USAGE', '--serial and --owner are required');
    const version = values.version === undefined ? undefined : Number(values.version);
    if (version !== undefined && (!Number.isInteger(version) || version <= 0))
      throw new LenscapError<ToolCode>(
        'ERR_CLI_USAGE',
        `--version must be a positive integer, found ${JSON.stringify(values.version)}`,
      );
    const { loadOrCreateSigningKeys } = await import('../signing-keys.ts');
    const { signBindingRecord } = await import('../mint.ts');
    const keys = await loadOrCreateSigningKeys(values['dev-dir'] ?? '.lenscap/dev');
    const jws = signBindingRecord(keys.binding, {
      serial: values.serial,
      owner: values.owner,
      viewers: values.viewer ?? [],
      ...(version ? { version } : {}),
    });
    if (values.out) writeFileSync(values.out, jws + '\n');
    if (!values.send) {
      if (!values.out) io.out(jws);
      return 0;
    }
    const timeoutS = values.timeout === undefined ? 20 : Number(values.timeout);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0)
      throw new LenscapError<ToolCode>('ERR_CLI_USAGE', `--timeout must be a positive number of seconds`);
    await sendBinding({
      devDir: values['dev-dir'] ?? '.lenscap/dev',
      url: values['broker-url'] ?? `mqtts://127.0.0.1:${DEV_PORTS.broker}`,
      serial: values.serial,
      record: jws,
      timeoutMs: timeoutS * 1000,
    });
    io.out(`bound ${values.serial} to ${values.owner}`);
    return 0;
  },
};
