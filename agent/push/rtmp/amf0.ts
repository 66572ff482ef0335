/**
 * AMF0, the value encoding of RTMP commands and FLV script data: numbers, booleans, strings,
 * objects, null/undefined, ECMA and strict arrays — what relays send to a publisher or player.
 * Pure functions on bytes. Must never throw anything but a coded error on malformed input, nor
 * recurse or allocate without bound on it.
 */
import { LenscapError } from '../../errors.ts';

export type Amf0Value = number | boolean | string | null | undefined | Amf0Object | Amf0Value[];
export interface Amf0Object {
  [key: string]: Amf0Value;
}

const MAX_DEPTH = 16;

function str(s: string, long = false): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (!long && b.length > 0xffff) throw new LenscapError('ERR_RTMP_AMF', 'AMF0 string too long');
  const h = Buffer.alloc(long ? 4 : 2);
  if (long) h.writeUInt32BE(b.length);
  else h.writeUInt16BE(b.length);
  return Buffer.concat([h, b]);
}

function encodeOne(v: Amf0Value, depth: number): Buffer {
  if (depth > MAX_DEPTH) throw new LenscapError('ERR_RTMP_AMF', 'AMF0 value nested too deep');
  if (typeof v === 'number') {
    const b = Buffer.alloc(9);
    b[0] = 0x00;
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (typeof v === 'boolean') return Buffer.from([0x01, v ? 1 : 0]);
  if (typeof v === 'string') {
    const long = Buffer.byteLength(v) > 0xffff;
    return Buffer.concat([Buffer.from([long ? 0x0c : 0x02]), str(v, long)]);
  }
  if (v === null) return Buffer.from([0x05]);
  if (v === undefined) return Buffer.from([0x06]);
  if (Array.isArray(v)) {
    const h = Buffer.alloc(5);
    h[0] = 0x0a;
    h.writeUInt32BE(v.length, 1);
    return Buffer.concat([h, ...v.map((x) => encodeOne(x, depth + 1))]);
  }
  const parts: Buffer[] = [Buffer.from([0x03])];
  for (const [k, x] of Object.entries(v)) parts.push(str(k), encodeOne(x, depth + 1));
  parts.push(Buffer.from([0, 0, 0x09]));
  return Buffer.concat(parts);
}

export function encodeAmf0(...values: Amf0Value[]): Buffer {
  return Buffer.concat(values.map((v) => encodeOne(v, 0)));
}

/** Decodes every value in `buf`. Throws ERR_RTMP_AMF on a truncated or unknown encoding. */
export function decodeAmf0(buf: Buffer): Amf0Value[] {
  let o = 0;
  const need = (n: number) => {
    if (o + n > buf.length) throw new LenscapError('ERR_RTMP_AMF', 'AMF0 data truncated');
  };
  const readStr = (long = false): string => {
    need(long ? 4 : 2);
    const n = long ? buf.readUInt32BE(o) : buf.readUInt16BE(o);
    o += long ? 4 : 2;
    need(n);
    const s = buf.toString('utf8', o, o + n);
    o += n;
    return s;
  };
  const readProps = (depth: number): Amf0Object => {
    const obj: Amf0Object = {};
    for (;;) {
      need(3);
      if (buf.readUInt16BE(o) === 0 && buf[o + 2] === 0x09) {
        o += 3;
        return obj;
      }
      const k = readStr();
      // Own data properties only: a key like "__proto__" must not reach the prototype.
      Object.defineProperty(obj, k, { value: readOne(depth + 1), enumerable: true, writable: true });
    }
  };
  const readOne = (depth: number): Amf0Value => {
    if (depth > MAX_DEPTH) throw new LenscapError('ERR_RTMP_AMF', 'AMF0 value nested too deep');
    need(1);
    const t = buf[o++]!;
    switch (t) {
      case 0x00:
        need(8);
        o += 8;
        return buf.readDoubleBE(o - 8);
      case 0x01:
        need(1);
        return buf[o++] !== 0;
      case 0x02:
        return readStr();
      case 0x0c:
        return readStr(true);
      case 0x03:
        return readProps(depth);
      case 0x08:
        need(4);
        o += 4; // the count is a hint; the end marker is authoritative
        return readProps(depth);
      case 0x05:
        return null;
      case 0x06:
        return undefined;
      case 0x0a: {
        need(4);
        const n = buf.readUInt32BE(o);
        o += 4;
        if (n > buf.length - o) throw new LenscapError('ERR_RTMP_AMF', 'AMF0 array longer than its data');
        const a: Amf0Value[] = [];
        for (let i = 0; i < n; i++) a.push(readOne(depth + 1));
        return a;
      }
      case 0x0b:
        need(10);
        o += 10;
        return buf.readDoubleBE(o - 10);
      default:
        throw new LenscapError('ERR_RTMP_AMF', `AMF0 type 0x${t.toString(16)} not supported`);
    }
  };
  const out: Amf0Value[] = [];
  while (o < buf.length) out.push(readOne(0));
  return out;
}
