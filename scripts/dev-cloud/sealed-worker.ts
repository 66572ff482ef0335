/**
 * The viewer page's decrypting Worker (bundled by sealed-page.ts with esbuild): fetches a sealed
 * HTTP-FLV stream from the relay, opens each video tag with the viewer's own key pair through the
 * agent's FrameOpener (WebCrypto only), rebuilds the FLV with the opened tags and hands it to the
 * page's mpegts.js loader. Nothing that failed to open is ever forwarded; the page learns "sealed
 * for you" / "sealed for someone else" from the first envelope.
 * Must never forward a sealed or unauthenticated frame to the player, nor export the private key.
 */
import { FrameOpener } from '../../agent/sealing/opener.ts';

interface Init {
  type: 'init';
  url: string;
  serial: string;
  keyPair: CryptoKeyPair;
}

const post = (m: unknown, transfer: Transferable[] = []) =>
  (self as unknown as { postMessage(m: unknown, t: Transferable[]): void }).postMessage(m, transfer);

function tag(type: number, ts: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(11 + body.length + 4);
  const dv = new DataView(out.buffer);
  out[0] = type;
  out[1] = (body.length >> 16) & 0xff;
  out[2] = (body.length >> 8) & 0xff;
  out[3] = body.length & 0xff;
  out.set(ts, 4);
  out.set(body, 11);
  dv.setUint32(11 + body.length, 11 + body.length);
  return out;
}

async function run(init: Init): Promise<void> {
  const opener = new FrameOpener({ serial: init.serial, keyPair: init.keyPair });
  const res = await fetch(init.url);
  if (!res.ok || !res.body) {
    post({ type: 'error', msg: `relay answered ${res.status}` });
    return;
  }
  const reader = res.body.getReader();
  let buf = new Uint8Array(0);
  let headerDone = false;
  let lastStatus: boolean | undefined;
  let decryptMs = 0;
  let decryptBytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const joined = new Uint8Array(buf.length + value.length);
    joined.set(buf);
    joined.set(value, buf.length);
    buf = joined;
    const out: Uint8Array[] = [];
    if (!headerDone) {
      if (buf.length < 13) continue;
      const h = buf.slice(0, 13);
      h[4] = 0x01; // video only
      out.push(h);
      buf = buf.subarray(13);
      headerDone = true;
    }
    while (buf.length >= 11) {
      const size = (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!;
      if (buf.length < 11 + size + 4) break;
      const type = buf[0]! & 0x1f;
      const ts = buf.slice(4, 8);
      const body = buf.slice(11, 11 + size);
      buf = buf.subarray(11 + size + 4);
      if (type === 18) out.push(tag(18, ts, body));
      if (type !== 9) continue;
      const t0 = performance.now();
      const r = await opener.open(body);
      decryptMs += performance.now() - t0;
      decryptBytes += body.length;
      if (r.ok) out.push(tag(9, ts, r.body));
    }
    if (opener.sealedForMe !== lastStatus) {
      lastStatus = opener.sealedForMe;
      post({ type: 'status', sealedForMe: lastStatus });
    }
    post({ type: 'counters', ...opener.counters, decryptMs, decryptBytes });
    if (out.length) {
      const n = out.reduce((a, b) => a + b.length, 0);
      const chunk = new Uint8Array(n);
      let o = 0;
      for (const p of out) {
        chunk.set(p, o);
        o += p.length;
      }
      post({ type: 'data', chunk: chunk.buffer }, [chunk.buffer]);
    }
  }
  post({ type: 'end' });
}

self.onmessage = (ev: MessageEvent<Init>) => {
  if (ev.data?.type === 'init') run(ev.data).catch((e) => post({ type: 'error', msg: String(e) }));
};
