/**
 * An rtmp(s) URL as RTMP needs it: host, port, the application (the first path segment), the
 * stream name (the rest of the path, with any query: where relays expect a stream key) and the
 * tcUrl the connect command carries — the same split ffmpeg's RTMP client makes.
 * Pure. Must never put the stream name or query into tcUrl (tcUrl is echoed in relay logs).
 */
import { LenscapError } from '../../errors.ts';

export interface RtmpTarget {
  tls: boolean;
  host: string;
  port: number;
  app: string;
  stream: string;
  tcUrl: string;
}

export function parseRtmpUrl(url: string): RtmpTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LenscapError('ERR_RTMP_PROTOCOL', 'relay URL does not parse');
  }
  const tls = u.protocol === 'rtmps:';
  if (!tls && u.protocol !== 'rtmp:') throw new LenscapError('ERR_RTMP_PROTOCOL', 'relay URL is not rtmp(s)');
  if (u.username || u.password) throw new LenscapError('ERR_RTMP_PROTOCOL', 'relay URL carries credentials');
  const segs = u.pathname.split('/').filter((s) => s !== '');
  if (segs.length < 2 || !u.hostname)
    throw new LenscapError('ERR_RTMP_PROTOCOL', 'relay URL needs a host, an application and a stream name');
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = u.port ? Number(u.port) : tls ? 443 : 1935;
  const app = decodeURIComponent(segs[0]!);
  const stream = segs.slice(1).map(decodeURIComponent).join('/') + u.search;
  const tcUrl = `${u.protocol}//${u.host}/${segs[0]}`;
  return { tls, host, port, app, stream, tcUrl };
}
