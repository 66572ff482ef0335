/**
 * The binding record: who may view this camera ({serial, owner, viewers[], version, iat}), signed
 * by a binding key — a different key and a different cloud path from grant issuance, so one
 * corrupted user↔device cache cannot both mint and authorise a grant.
 * Must never accept a record for another serial or an older version.
 */
import { z } from 'zod';
import { LenscapError } from '../errors.ts';
import type { VerificationKey } from './jws.ts';
import { verifySignedDocument } from './signed-document.ts';

export const BINDING_TYP = 'lenscap-binding+jwt';

const viewerId = z.string().min(1).max(256);
const bindingPayload = z.object({
  serial: z.string().min(1).max(64),
  owner: viewerId,
  viewers: z.array(viewerId).max(256),
  version: z.number().int().positive(),
  iat: z.number().int().nonnegative(),
});

export type BindingRecord = z.infer<typeof bindingPayload>;

export function verifyBindingRecord(
  jws: string,
  opts: { serial: string; bindingKeys: ReadonlyMap<string, VerificationKey>; minVersion?: number },
): BindingRecord {
  const { payload } = verifySignedDocument(jws, {
    typ: BINDING_TYP,
    keys: opts.bindingKeys,
    schema: bindingPayload,
    errorCode: 'ERR_BINDING_INVALID',
    what: 'binding record',
  });
  if (payload.serial !== opts.serial) {
    throw new LenscapError(
      'ERR_BINDING_WRONG_SERIAL',
      `binding record is for ${JSON.stringify(payload.serial)}, not this camera`,
      { claimedSerial: payload.serial },
    );
  }
  if (opts.minVersion !== undefined && payload.version <= opts.minVersion) {
    throw new LenscapError(
      'ERR_BINDING_ROLLBACK',
      `binding record version ${payload.version} is not newer than installed ${opts.minVersion}`,
    );
  }
  return payload;
}

export function isBoundViewer(record: BindingRecord, sub: string): boolean {
  return record.owner === sub || record.viewers.includes(sub);
}
