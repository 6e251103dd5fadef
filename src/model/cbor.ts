// The one CBOR codec for repository records. Repository bytes are untrusted: decoding failures,
// including stack exhaustion from deep nesting, become SNAP_CORRUPT.
import { Encoder } from 'cbor-x';
import { SnapError } from '../core/errors.js';

// Plain maps with string keys and byte strings for Buffers: no cbor-x "records" extension, so any
// CBOR reader can read snap's records (docs/format.md).
const codec = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, pack: false });

export function encodeCbor(value: unknown): Buffer {
  return Buffer.from(codec.encode(value));
}

export function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    return codec.decode(bytes);
  } catch (e) {
    throw new SnapError('SNAP_CORRUPT', `${what} is not valid CBOR (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}

// Shape checks for decoded records. Each names the record and the field so `check` can say what is wrong.
export type Rec = Record<string, unknown>;

export function asRecord(v: unknown, what: string): Rec {
  if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)) return v as Rec;
  throw new SnapError('SNAP_CORRUPT', `${what}: expected a map`);
}

export function asUint(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint' && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new SnapError('SNAP_CORRUPT', `${what}: expected an unsigned integer`);
}

export function asInt(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new SnapError('SNAP_CORRUPT', `${what}: expected an integer`);
}

export function asString(v: unknown, what: string): string {
  if (typeof v === 'string') return v;
  throw new SnapError('SNAP_CORRUPT', `${what}: expected a string`);
}

export function asBytes(v: unknown, what: string): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new SnapError('SNAP_CORRUPT', `${what}: expected a byte string`);
}

export function asArray(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  throw new SnapError('SNAP_CORRUPT', `${what}: expected an array`);
}

export function asStringArray(v: unknown, what: string): string[] {
  return asArray(v, what).map((x, i) => asString(x, `${what}[${i}]`));
}
