/**
 * Reads the serial (the device certificate's CN) without the full start checks: for tools such as
 * `grant inspect` that must work on a half-broken camera. The agent itself uses the start checks.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function readSerialFromCert(certFile: string): string | undefined {
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject);
    return cn?.[1];
  } catch {
    return undefined;
  }
}
