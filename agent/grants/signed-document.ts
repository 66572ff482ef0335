/**
 * Verifies the camera's signed documents other than grants (trust bundle, binding record): one
 * code path, so each is checked the same strict way — typ, alg, kid in the right key set,
 * signature, then the payload against its schema. Throws LenscapError with a stable code.
 */
import type { z } from 'zod';
import { LenscapError, type ErrorCode } from '../errors.ts';
import { checkHeader, JwsError, parseCompact, verifySignature, type VerificationKey } from './jws.ts';

const MAX_DOCUMENT_BYTES = 64 * 1024;

export function verifySignedDocument<S extends z.ZodType>(
  jws: string,
  opts: {
    typ: string;
    keys: ReadonlyMap<string, VerificationKey>;
    schema: S;
    errorCode: ErrorCode;
    what: string;
  },
): { payload: z.infer<S>; kid: string } {
  try {
    if (typeof jws !== 'string') throw new JwsError('malformed', 'not a string');
    const parsed = parseCompact(jws.trim(), MAX_DOCUMENT_BYTES);
    const { alg, kid } = checkHeader(parsed.header, opts.typ, ['EdDSA', 'ES256']);
    const key = opts.keys.get(kid);
    if (!key) throw new JwsError('unknown_key', `kid ${kid} is not a known key for a ${opts.what}`);
    if (key.alg !== alg) throw new JwsError('alg_not_allowed', `alg ${alg} does not match key ${kid}`);
    if (!verifySignature(alg, key.key, parsed))
      throw new JwsError('bad_signature', 'signature does not verify');
    const result = opts.schema.safeParse(parsed.payload);
    if (!result.success) {
      const first = result.error.issues[0];
      throw new JwsError(
        'malformed',
        `payload ${first?.path.join('.') || ''}: ${first?.message ?? 'invalid'}`,
      );
    }
    return { payload: result.data, kid };
  } catch (err) {
    if (err instanceof JwsError) {
      throw new LenscapError(opts.errorCode, `${opts.what} refused (${err.reason}): ${err.message}`, {
        reason: err.reason,
      });
    }
    throw err;
  }
}
