/**
 * The closed error codes of scripts/ (dev cloud, bundle, QEMU, npm start); never shipped: every LenscapError raised here carries one of these, and a
 * code logged under `code` for a failure uses the same names. Adding one is a contract change.
 * Imports only the device code union; only the dev tools use it (device code never imports scripts/).
 */
import type { ErrorCode } from '../agent/errors.ts';

export const DEV_CODES = [
  'ERR_BUNDLE_DEPS',
  'ERR_BUNDLE_ARCH',
  'ERR_BROKER_ACL',
  'ERR_BROKER_START',
  'ERR_CSR_INVALID',
  'ERR_CSR_SERIAL_MISMATCH',
  'ERR_CSR_WEAK_KEY',
  'ERR_CLOUD_COMMAND',
  'ERR_CAMERA_OFFLINE',
  'ERR_RELAY_LISTEN',
  'ERR_RELAY_RUNNING',
  'ERR_QEMU_IMAGE',
  'ERR_QEMU_ARGS',
  'ERR_START_GATE',
  'ERR_START_TIMEOUT',
  'ERR_BUNDLE_STEP',
  'ERR_BUNDLE_DEV_CODE',
  'ERR_BUNDLE_PIN_SECRET',
  'ERR_BUNDLE_NATIVE',
  'ERR_BROKER_MISSING',
  'ERR_SERIAL_INVALID',
  'ERR_CLOUD_CONNECT',
  'ERR_CLOUD_COMMAND_TIMEOUT',
  'ERR_CLAIM_REFUSED',
  'ERR_QEMU_EXITED',
  'ERR_QEMU_TIMEOUT',
  'ERR_START_PROVISION',
  'ERR_START_AGENT',
  'ERR_DEV_CLOUD_STATE',
  'ERR_NOT_CLAIMED',
  'ERR_BROKER_SERIAL',
  'ERR_BROKER_NODES',
  'ERR_BROKER_CTL',
] as const;

export type DevCode = (typeof DEV_CODES)[number];

/** What a dev tool may raise: its own codes and every device code (it speaks the same protocols). */
export type ToolCode = DevCode | ErrorCode;
