/**
 * A real HTTP-FLV / WebSocket-FLV client for tests and benches: writes the HTTP request itself on a
 * raw TCP/TLS socket, counts every byte that arrives on that socket, decodes chunked bodies and
 * parses FLV tags (AVC sequence header, keyframes). "Zero media bytes" is asserted against what
 * crossed the socket, not what a library chose to surface.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';

export interface FlvTag {
  type: 'audio' | 'video' | 'script' | number;
  timestamp: number;
  size: number;
  /** Video: 1 = keyframe, 2 = inter frame. */
  frameType?: number;
  /** Video AVC: 0 = sequence header, 1 = NALU. */
  avcPacketType?: number;
  /** Milliseconds since the request was sent. */
  at: number;
}

export interface FlvClientOptions {
  url: string;
  headers?: Record<string, string>;
  method?: string;
  /** Trust for https (test CA) or false to skip verification of a test cert. */
  ca?: string | Buffer;
  rejectUnauthorized?: boolean;
  /** Request body (e.g. a publish attempt). */
  body?: Buffer;
}

/** Parses FLV: header, then [prevTagSize][tag]... Tolerates arbitrary chunking. */
export class FlvParser {
  private buf: Buffer = Buffer.alloc(0);
  private headerSeen = false;
  readonly tags: FlvTag[] = [];
  flvBytes = 0;
  invalid = false;
  constructor(
    private readonly t0: number,
    private readonly onTag?: (t: FlvTag) => void,
  ) {}

  push(chunk: Buffer): void {
    this.flvBytes += chunk.length;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (!this.headerSeen) {
      if (this.buf.length < 13) return;
      if (this.buf.toString('latin1', 0, 3) !== 'FLV') {
        this.invalid = true;
        return;
      }
      const headerLen = this.buf.readUInt32BE(5);
      this.buf = this.buf.subarray(headerLen + 4);
      this.headerSeen = true;
    }
    while (this.buf.length >= 11) {
      const type = this.buf[0]! & 0x1f;
      const size = this.buf.readUIntBE(1, 3);
      if (this.buf.length < 11 + size + 4) return;
      const ts = this.buf.readUIntBE(4, 3) | (this.buf[7]! << 24);
      const tag: FlvTag = {
        type: type === 8 ? 'audio' : type === 9 ? 'video' : type === 18 ? 'script' : type,
        timestamp: ts,
        size,
        at: performance.now() - this.t0,
      };
      if (type === 9 && size >= 2) {
        tag.frameType = this.buf[11]! >> 4;
        if ((this.buf[11]! & 0x0f) === 7) tag.avcPacketType = this.buf[12]!;
      }
      this.tags.push(tag);
      this.onTag?.(tag);
      this.buf = this.buf.subarray(11 + size + 4);
    }
  }

  get sawHeader(): boolean {
    return this.headerSeen;
  }
  get sawSequenceHeader(): boolean {
    return this.tags.some((t) => t.type === 'video' && t.avcPacketType === 0);
  }
  get sawKeyframe(): boolean {
    return this.tags.some((t) => t.type === 'video' && t.frameType === 1 && t.avcPacketType === 1);
  }
}

export interface FlvResult {
  status: number;
  headers: Record<string, string>;
  /** Every byte read from the socket (head + body). */
  socketBytes: number;
  /** Decoded body bytes. */
  bodyBytes: number;
  /** Body bytes that belong to an FLV stream (0 unless the body starts with "FLV"). */
  flvBodyBytes: number;
  body: Buffer;
  parser: FlvParser;
  closed: boolean;
  /** ms since request when the socket closed. */
  closedAt?: number;
  /** ms since request when the first keyframe tag was complete. */
  firstKeyframeAt?: number;
}

type Waiter = { pred: () => boolean; resolve: () => void };

export class FlvClient {
  readonly result: FlvResult;
  private socket: Socket | undefined;
  private ws: WebSocket | undefined;
  private wsSocket: Socket | undefined;
  private head: Buffer = Buffer.alloc(0);
  private inHead = true;
  private chunked = false;
  private chunkBuf: Buffer = Buffer.alloc(0);
  private waiters: Waiter[] = [];
  private readonly t0 = performance.now();

  constructor(private readonly opts: FlvClientOptions) {
    const parser = new FlvParser(this.t0, (t) => {
      if (
        t.type === 'video' &&
        t.frameType === 1 &&
        t.avcPacketType === 1 &&
        this.result.firstKeyframeAt === undefined
      )
        this.result.firstKeyframeAt = t.at;
    });
    this.result = {
      status: 0,
      headers: {},
      socketBytes: 0,
      bodyBytes: 0,
      flvBodyBytes: 0,
      body: Buffer.alloc(0),
      parser,
      closed: false,
    };
  }

  /** HTTP(S) GET (or opts.method) on a raw socket. */
  static http(opts: FlvClientOptions): FlvClient {
    const c = new FlvClient(opts);
    c.startHttp();
    return c;
  }

  /** WebSocket-FLV; `protocol` lets a test try the NMS publisher sub-protocols. */
  static ws(opts: FlvClientOptions & { protocol?: string }): FlvClient {
    const c = new FlvClient(opts);
    c.startWs(opts.protocol);
    return c;
  }

  private startHttp(): void {
    const u = new URL(this.opts.url);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const s: Socket =
      u.protocol === 'https:'
        ? tlsConnect({
            host: u.hostname,
            port,
            servername: /^[\d.]+$/.test(u.hostname) ? undefined : u.hostname,
            ...(this.opts.ca ? { ca: this.opts.ca } : {}),
            rejectUnauthorized: this.opts.rejectUnauthorized ?? true,
          })
        : netConnect({ host: u.hostname, port });
    this.socket = s;
    const lines = [
      `${this.opts.method ?? 'GET'} ${u.pathname}${u.search} HTTP/1.1`,
      `Host: ${u.host}`,
      'Connection: close',
    ];
    for (const [k, v] of Object.entries(this.opts.headers ?? {})) lines.push(`${k}: ${v}`);
    if (this.opts.body) lines.push(`Content-Length: ${this.opts.body.length}`);
    s.once(u.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      s.write(lines.join('\r\n') + '\r\n\r\n');
      if (this.opts.body) s.write(this.opts.body);
    });
    s.on('data', (d: Buffer) => {
      this.result.socketBytes += d.length;
      this.onHttpData(d);
      this.check();
    });
    s.on('error', () => undefined);
    s.on('close', () => this.markClosed());
  }

  private startWs(protocol?: string): void {
    const ws = new WebSocket(this.opts.url, protocol ? [protocol] : [], {
      headers: this.opts.headers ?? {},
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
      rejectUnauthorized: this.opts.rejectUnauthorized ?? true,
    });
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    // bytesRead, not a 'data' listener: a listener added here would steal the frames that
    // arrived with the 101 response from ws's own reader.
    ws.on('upgrade', (res) => {
      this.result.status = res.statusCode ?? 0;
      this.wsSocket = res.socket as Socket;
    });
    ws.on('unexpected-response', (_req, res) => {
      this.result.status = res.statusCode ?? 0;
      for (const [k, v] of Object.entries(res.headers)) this.result.headers[k] = String(v);
      this.wsSocket = res.socket as Socket;
      res.on('data', (d: Buffer) => {
        this.result.bodyBytes += d.length;
        this.result.body = Buffer.concat([this.result.body, d]);
      });
      res.on('end', () => this.markClosed());
      res.on('close', () => this.markClosed());
    });
    ws.on('message', (d: Buffer) => {
      if (this.wsSocket) this.result.socketBytes = this.wsSocket.bytesRead;
      this.onBody(d);
      this.check();
    });
    ws.on('error', () => this.markClosed());
    ws.on('close', () => this.markClosed());
  }

  private onHttpData(d: Buffer): void {
    if (this.inHead) {
      this.head = Buffer.concat([this.head, d]);
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headText = this.head.subarray(0, end).toString('latin1');
      const rest = this.head.subarray(end + 4);
      this.inHead = false;
      const [statusLine, ...hs] = headText.split('\r\n');
      this.result.status = Number(statusLine!.split(' ')[1]);
      for (const h of hs) {
        const i = h.indexOf(':');
        if (i > 0) this.result.headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim();
      }
      this.chunked = /chunked/i.test(this.result.headers['transfer-encoding'] ?? '');
      if (rest.length) this.onHttpBody(rest);
      return;
    }
    this.onHttpBody(d);
  }

  private onHttpBody(d: Buffer): void {
    if (!this.chunked) return this.onBody(d);
    this.chunkBuf = Buffer.concat([this.chunkBuf, d]);
    for (;;) {
      const nl = this.chunkBuf.indexOf('\r\n');
      if (nl < 0) return;
      const size = parseInt(this.chunkBuf.subarray(0, nl).toString('latin1'), 16);
      if (Number.isNaN(size)) return;
      if (this.chunkBuf.length < nl + 2 + size + 2) return;
      if (size > 0) this.onBody(this.chunkBuf.subarray(nl + 2, nl + 2 + size));
      this.chunkBuf = this.chunkBuf.subarray(nl + 2 + size + 2);
      if (size === 0) return;
    }
  }

  private onBody(d: Buffer): void {
    this.result.bodyBytes += d.length;
    if (this.result.bodyBytes <= 4096 && this.result.status !== 200)
      this.result.body = Buffer.concat([this.result.body, d]);
    const isFlv =
      this.result.parser.flvBytes > 0 ||
      (this.result.bodyBytes - d.length === 0 && d.subarray(0, 3).toString('latin1') === 'FLV');
    if (isFlv) {
      this.result.parser.push(d);
      this.result.flvBodyBytes = this.result.parser.flvBytes;
    } else if (this.result.status !== 200) {
      this.result.body = Buffer.concat([this.result.body.subarray(0, 0), this.result.body]);
    }
  }

  private markClosed(): void {
    if (this.result.closed) return;
    if (this.wsSocket) this.result.socketBytes = this.wsSocket.bytesRead;
    this.result.closed = true;
    this.result.closedAt = performance.now() - this.t0;
    this.check();
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (w.pred()) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  /** Resolves when pred holds; rejects after timeoutMs with what was seen so far. */
  waitFor(pred: (r: FlvResult) => boolean, timeoutMs = 5000, what = 'condition'): Promise<FlvResult> {
    return new Promise((resolve, reject) => {
      if (pred(this.result)) return resolve(this.result);
      const t = setTimeout(
        () =>
          reject(
            new Error(
              `timed out waiting for ${what}: status ${this.result.status}, ${this.result.parser.tags.length} tags, closed=${this.result.closed}`,
            ),
          ),
        timeoutMs,
      );
      this.waiters.push({
        pred: () => pred(this.result),
        resolve: () => (clearTimeout(t), resolve(this.result)),
      });
    });
  }

  /** Waits for FLV header + AVC sequence header + a keyframe. */
  waitForKeyframe(timeoutMs = 8000): Promise<FlvResult> {
    return this.waitFor(
      (r) => r.parser.sawHeader && r.parser.sawSequenceHeader && r.parser.sawKeyframe,
      timeoutMs,
      'a keyframe',
    );
  }

  waitClosed(timeoutMs = 5000): Promise<FlvResult> {
    return this.waitFor((r) => r.closed, timeoutMs, 'close');
  }

  /** The JSON error body of a refusal, if any. */
  json(): unknown {
    try {
      return JSON.parse(this.result.body.toString('utf8'));
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.socket?.destroy();
    this.ws?.terminate();
  }
}

/**
 * The head of an HTTP-FLV response read through fetch (a stack's grant URL): the status, the first
 * three bytes ("FLV" when media flows) and how many bytes came, reading up to `max` bytes for at
 * most `ms`. A stalled stream ends the read at the bound instead of hanging the test.
 */
export async function readFlvHead(
  url: string,
  token: string,
  dpop?: string,
  opts: { max?: number; ms?: number } = {},
): Promise<{ status: number; head: string; bytes: number }> {
  const max = opts.max ?? 4096;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.ms ?? 20_000);
  let head = '';
  let bytes = 0;
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, ...(dpop ? { dpop } : {}) },
      signal: ac.signal,
    });
    if (!res.ok || !res.body) return { status: res.status, head: '', bytes: 0 };
    const reader = res.body.getReader();
    try {
      while (bytes < max) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!head) head = Buffer.from(value).subarray(0, 3).toString('latin1');
        bytes += value.length;
      }
    } catch {
      /* the bound ran out: report what came */
    }
    return { status: res.status, head, bytes };
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}
