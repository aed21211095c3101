// The protobuf wire format, as far as a SentencePiece ModelProto needs it: a message is split into
// its fields, and each field is read as the type the schema gives it. Unknown fields are kept (the
// caller ignores them), so newer model files still load.
import { SentencePieceModelError } from './errors.js';
import { utf8Decoder } from './utf8.js';

/** One field of a message: varints as [lo, hi] 32-bit halves, the other wire types as bytes. */
export interface WireField {
  field: number;
  wire: number;
  lo: number;
  hi: number;
  bytes: Uint8Array | null;
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** The fields of a serialized message, in file order; `what` names it in messages. */
export function readMessage(buf: Uint8Array, what: string): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  const fail = (msg: string): never => {
    throw new SentencePieceModelError(`${what}: malformed protobuf at byte ${pos}: ${msg}`);
  };
  const varint = (): [number, number] => {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) fail('truncated varint');
      const b = buf[pos++];
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (!(b & 0x80)) return [lo >>> 0, hi >>> 0];
    }
    return fail('varint longer than 10 bytes');
  };
  const bytes = (field: number, wire: number, n: number, name: string) => {
    if (pos + n > buf.length) fail(`${name} field ${field} runs past the end`);
    out.push({ field, wire, lo: 0, hi: 0, bytes: buf.subarray(pos, pos + n) });
    pos += n;
  };
  while (pos < buf.length) {
    const [tag, tagHi] = varint();
    if (tagHi !== 0) fail('field tag out of range');
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) fail('field number 0');
    switch (wire) {
      case VARINT: {
        const [lo, hi] = varint();
        out.push({ field, wire, lo, hi, bytes: null });
        break;
      }
      case FIXED64:
        bytes(field, wire, 8, 'fixed64');
        break;
      case LENGTH_DELIMITED: {
        const [len, lenHi] = varint();
        if (lenHi !== 0) fail(`length-delimited field ${field} runs past the end`);
        bytes(field, wire, len, 'length-delimited');
        break;
      }
      case FIXED32:
        bytes(field, wire, 4, 'fixed32');
        break;
      default:
        fail(`unsupported wire type ${wire} (field ${field})`);
    }
  }
  return out;
}

function expectWire(f: WireField, wire: number, what: string): Uint8Array {
  if (f.wire !== wire) throw new SentencePieceModelError(`${what}: field ${f.field} has wire type ${f.wire}, expected ${wire}`);
  return f.bytes ?? new Uint8Array(0);
}

export const asBytes = (f: WireField, what: string): Uint8Array => expectWire(f, LENGTH_DELIMITED, what);
export const asString = (f: WireField, what: string): string => utf8Decoder.decode(asBytes(f, what));
export const asBool = (f: WireField, what: string): boolean => {
  expectWire(f, VARINT, what);
  return f.lo !== 0 || f.hi !== 0;
};
/** int32 / enum: the low 32 bits, two's complement (negative values are sign-extended varints). */
export const asInt32 = (f: WireField, what: string): number => {
  expectWire(f, VARINT, what);
  return f.lo | 0;
};
export const asFloat = (f: WireField, what: string): number => {
  const b = expectWire(f, FIXED32, what);
  return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
};
