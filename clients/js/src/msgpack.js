// MessagePack, as much of it as Herald's frames use: nil, booleans, integers (up to 64 bits;
// beyond 2^53 they decode as BigInt), floats, strings, binary (as Uint8Array), arrays and maps
// with string keys (as plain objects). Used by herald-client with `format: "msgpack"`.

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** Encodes `value` as MessagePack. */
export function encode(value) {
  const out = [];
  put(out, value);
  return Uint8Array.from(out);
}

function bytes(out, n, width) {
  for (let i = width - 1; i >= 0; i--) out.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
}

function head(out, n, small, fix, codes) {
  if (n < small) return out.push(fix | n);
  if (n < 0x100 && codes[0]) return out.push(codes[0], n);
  if (n < 0x10000) return out.push(codes[1], n >> 8, n & 0xff);
  out.push(codes[2]);
  bytes(out, n, 4);
}

function put(out, v) {
  if (v === null || v === undefined) return out.push(0xc0);
  if (v === false) return out.push(0xc2);
  if (v === true) return out.push(0xc3);
  if (typeof v === "bigint") {
    out.push(v < 0n ? 0xd3 : 0xcf);
    return bytes(out, BigInt.asUintN(64, v), 8);
  }
  if (typeof v === "number") {
    if (Number.isInteger(v) && Number.isSafeInteger(v)) {
      if (v >= 0) {
        if (v < 0x80) return out.push(v);
        if (v < 0x100) return out.push(0xcc, v);
        if (v < 0x10000) return out.push(0xcd, v >> 8, v & 0xff);
        if (v < 0x100000000) return out.push(0xce, ...[24, 16, 8, 0].map((s) => (v >>> s) & 0xff));
        out.push(0xcf);
        return bytes(out, v, 8);
      }
      if (v >= -32) return out.push(v & 0xff);
      if (v >= -0x80) return out.push(0xd0, v & 0xff);
      if (v >= -0x8000) return out.push(0xd1, (v >> 8) & 0xff, v & 0xff);
      if (v >= -0x80000000) return out.push(0xd2, ...[24, 16, 8, 0].map((s) => (v >> s) & 0xff));
      out.push(0xd3);
      return bytes(out, BigInt.asUintN(64, BigInt(v)), 8);
    }
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, v);
    return out.push(0xcb, ...new Uint8Array(view.buffer));
  }
  if (typeof v === "string") {
    const b = utf8.encode(v);
    head(out, b.length, 32, 0xa0, [0xd9, 0xda, 0xdb]);
    for (const x of b) out.push(x);
    return;
  }
  if (v instanceof Uint8Array) {
    head(out, v.length, 0, 0, [0xc4, 0xc5, 0xc6]);
    for (const x of v) out.push(x);
    return;
  }
  if (Array.isArray(v)) {
    head(out, v.length, 16, 0x90, [0, 0xdc, 0xdd]);
    for (const x of v) put(out, x);
    return;
  }
  if (typeof v === "object") {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    head(out, entries.length, 16, 0x80, [0, 0xde, 0xdf]);
    for (const [k, x] of entries) {
      put(out, k);
      put(out, x);
    }
    return;
  }
  throw new TypeError(`cannot encode ${typeof v} as MessagePack`);
}

/** Decodes one MessagePack value from `input` (a Uint8Array or ArrayBuffer). */
export function decode(input) {
  const b = input instanceof Uint8Array ? input : new Uint8Array(input);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  const need = (n) => {
    if (at + n > b.length) throw new RangeError("truncated MessagePack");
  };
  const uint = (n) => {
    need(n);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(b[at + i]);
    at += n;
    return v;
  };
  const number = (big) => (big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big);
  const str = (n) => {
    need(n);
    const s = text.decode(b.subarray(at, at + n));
    at += n;
    return s;
  };
  const bin = (n) => {
    need(n);
    const s = b.slice(at, at + n);
    at += n;
    return s;
  };
  const array = (n) => Array.from({ length: n }, () => value());
  const map = (n) => {
    const o = {};
    for (let i = 0; i < n; i++) {
      const k = value();
      o[String(k)] = value();
    }
    return o;
  };
  const float = (n) => {
    need(n);
    const v = n === 4 ? view.getFloat32(at) : view.getFloat64(at);
    at += n;
    return v;
  };
  function value() {
    need(1);
    const c = b[at++];
    if (c < 0x80) return c;
    if (c < 0x90) return map(c & 0x0f);
    if (c < 0xa0) return array(c & 0x0f);
    if (c < 0xc0) return str(c & 0x1f);
    if (c >= 0xe0) return c - 0x100;
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(Number(uint(1)));
      case 0xc5: return bin(Number(uint(2)));
      case 0xc6: return bin(Number(uint(4)));
      case 0xca: return float(4);
      case 0xcb: return float(8);
      case 0xcc: return Number(uint(1));
      case 0xcd: return Number(uint(2));
      case 0xce: return Number(uint(4));
      case 0xcf: return number(uint(8));
      case 0xd0: return Number(BigInt.asIntN(8, uint(1)));
      case 0xd1: return Number(BigInt.asIntN(16, uint(2)));
      case 0xd2: return Number(BigInt.asIntN(32, uint(4)));
      case 0xd3: return number(BigInt.asIntN(64, uint(8)));
      case 0xd9: return str(Number(uint(1)));
      case 0xda: return str(Number(uint(2)));
      case 0xdb: return str(Number(uint(4)));
      case 0xdc: return array(Number(uint(2)));
      case 0xdd: return array(Number(uint(4)));
      case 0xde: return map(Number(uint(2)));
      case 0xdf: return map(Number(uint(4)));
      default: throw new RangeError(`unsupported MessagePack type 0x${c.toString(16)}`);
    }
  }
  const v = value();
  if (at !== b.length) throw new RangeError("trailing bytes after a MessagePack value");
  return v;
}
