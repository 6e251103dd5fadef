// The one CBOR codec for repository records. Repository bytes are untrusted: decoding failures,
// including stack exhaustion from deep nesting, become SNAP_CORRUPT.
import { createRequire } from 'node:module';
import { Encoder } from 'cbor-x';
import { SnapError } from '../core/errors.js';

/**
 * Whether cbor-x decodes with its optional native part, cbor-extract (it loads it the same way,
 * from its own folder); without it, it decodes in JavaScript with the same results.
 */
export function cborNative(): boolean {
  try {
    const fromCborX = createRequire(createRequire(import.meta.url).resolve('cbor-x'));
    fromCborX('cbor-extract');
    return true;
  } catch {
    return false;
  }
}

// Plain maps with string keys and byte strings for Buffers: no cbor-x "records" extension, so any
// CBOR reader can read snap's records (docs/format.md).
const codec = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, pack: false }) as Encoder & {
  /** cbor-x's own method (not in its types): encode into `buffer` from now on. */
  useBuffer(buffer: Uint8Array): void;
};

export function encodeCbor(value: unknown): Buffer {
  const out = Buffer.from(codec.encode(value));
  afterEncoding(out.length);
  return out;
}

/**
 * The encoding of `value` as a view of the encoder's own buffer, for a caller that copies it at
 * once (a tree written entry by entry): no Buffer per value.
 */
export function encodeCborView(value: unknown): Uint8Array {
  const view = codec.encode(value);
  afterEncoding(view.length);
  return view;
}

/**
 * cbor-x encodes into one buffer of its own (one for the process), which it keeps between calls,
 * grows to 4 times the largest value it encoded, and replaces with a new one of the same size
 * whenever it is nearly full. The tree of a directory of 17,800 files (3 MB) made it 12 MiB,
 * kept to the end of a backup (docs/performance.md, "The CBOR encoder's buffer"). After a value
 * that large it gets a small one again; the large one is garbage once the caller's copy is made
 * (cbor-x never writes to a buffer it was told to leave).
 */
const LARGE_ENCODING = 256 * 1024;
const SMALL_TARGET = 64 * 1024;

function afterEncoding(bytes: number): void {
  if (bytes > LARGE_ENCODING) codec.useBuffer(Buffer.allocUnsafeSlow(SMALL_TARGET));
}

export function decodeCbor(bytes: Uint8Array, what: string): unknown {
  const bad = structureProblem(bytes);
  if (bad) throw new SnapError('SNAP_CORRUPT', `${what} is not valid CBOR (${bad})`);
  try {
    return codec.decode(bytes);
  } catch (e) {
    throw new SnapError('SNAP_CORRUPT', `${what} is not valid CBOR (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}

/** Deeper than any record snap writes (a tree entry is at depth 4). */
const MAX_DEPTH = 32;

/**
 * Why `b` is not the kind of CBOR snap writes, or undefined. Checked before cbor-x sees untrusted
 * bytes, in one linear pass without recursion: tags are refused (snap writes none, and cbor-x
 * gives some of them costly meanings: a 1 MB bignum took minutes to convert, shared references
 * let a small record name one huge array a million times), as are indefinite lengths, nesting
 * deeper than MAX_DEPTH, lengths past the end of the data, and trailing bytes.
 */
export function structureProblem(b: Uint8Array): string | undefined {
  let pos = 0;
  const open: number[] = [1]; // items still to read in each open container; the outermost is the record
  while (open.length > 0) {
    if (open[open.length - 1] === 0) {
      open.pop();
      continue;
    }
    open[open.length - 1]!--;
    if (pos >= b.length) return 'truncated';
    const ib = b[pos++]!;
    const major = ib >> 5;
    const ai = ib & 31;
    let arg: number;
    if (ai < 24) arg = ai;
    else if (ai <= 27) {
      const n = 1 << (ai - 24);
      if (pos + n > b.length) return 'truncated';
      arg = 0;
      for (let i = 0; i < n; i++) arg = arg * 256 + b[pos + i]!;
      pos += n;
    } else return ai === 31 ? 'indefinite length' : 'reserved additional information';
    switch (major) {
      case 2:
      case 3:
        if (arg > b.length - pos) return 'a string longer than the data';
        pos += arg;
        break;
      case 4:
      case 5:
        if (open.length > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH}`;
        if (arg * (major === 5 ? 2 : 1) > b.length - pos) return 'more items declared than the data holds';
        open.push(major === 5 ? arg * 2 : arg);
        break;
      case 6:
        return 'a tag';
      // 0, 1: integers (argument already read); 7: simple values and floats (bytes already read).
    }
  }
  return pos === b.length ? undefined : 'trailing bytes';
}

/**
 * Decode one item whose bytes already passed structureProblem as part of an enclosing record (a
 * tree's entry, checked with its whole tree): the structure pass is not repeated.
 */
export function decodeCborItem(bytes: Uint8Array, what: string): unknown {
  try {
    return codec.decode(bytes);
  } catch (e) {
    throw new SnapError('SNAP_CORRUPT', `${what} is not valid CBOR (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}

/**
 * Decode a run of items lying one after the other (checked as decodeCborItem's are), calling
 * `each` with each in turn: one decoder call for many items (a call per item costs more than the
 * item for small ones).
 */
export function decodeCborItems(bytes: Uint8Array, what: string, each: (item: unknown) => void): void {
  if (bytes.length === 0) return;
  try {
    codec.decodeMultiple(bytes, (item: unknown) => {
      each(item);
    });
  } catch (e) {
    if (e instanceof SnapError) throw e;
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

/** The head of the item at `pos`: major type, argument, and where its content starts; undefined past the end. */
export function cborHead(b: Uint8Array, pos: number): { major: number; arg: number; next: number } | undefined {
  if (pos >= b.length) return undefined;
  const ib = b[pos]!;
  const ai = ib & 31;
  if (ai < 24) return { major: ib >> 5, arg: ai, next: pos + 1 };
  if (ai > 27) return undefined;
  const n = 1 << (ai - 24);
  if (pos + 1 + n > b.length) return undefined;
  let arg = 0;
  for (let i = 0; i < n; i++) arg = arg * 256 + b[pos + 1 + i]!;
  return { major: ib >> 5, arg, next: pos + 1 + n };
}

/**
 * cborHead without an object: returns the major type of the head at `pos` (-1 when there is
 * none) and writes its argument and where its content starts to `into[0]` and `into[1]`. For
 * loops over many items (a tree's sketch reads ~24 heads per entry: an object for each was most
 * of the count's garbage).
 */
export function cborHeadInto(b: Uint8Array, pos: number, into: Float64Array): number {
  if (pos >= b.length) return -1;
  const ib = b[pos]!;
  const ai = ib & 31;
  if (ai < 24) {
    into[0] = ai;
    into[1] = pos + 1;
    return ib >> 5;
  }
  if (ai > 27) return -1;
  const n = 1 << (ai - 24);
  if (pos + 1 + n > b.length) return -1;
  let arg = 0;
  for (let i = 0; i < n; i++) arg = arg * 256 + b[pos + 1 + i]!;
  into[0] = arg;
  into[1] = pos + 1 + n;
  return ib >> 5;
}

/** Position after the item at `pos` (no recursion), or undefined when it is not well formed. */
export function cborSkip(b: Uint8Array, pos: number): number | undefined {
  // cborHead's reading, inline: no object per item (a tree's check skips ~25 items per entry,
  // and an object for each was most of what checking a large tree cost).
  const len = b.length;
  let todo = 1;
  while (todo > 0) {
    if (pos >= len) return undefined;
    const ib = b[pos]!;
    const major = ib >> 5;
    const ai = ib & 31;
    let arg = ai;
    if (ai < 24) pos += 1;
    else {
      if (ai > 27) return undefined;
      const n = 1 << (ai - 24);
      if (pos + 1 + n > len) return undefined;
      arg = 0;
      for (let i = 1; i <= n; i++) arg = arg * 256 + b[pos + i]!;
      pos += 1 + n;
    }
    todo--;
    if (major === 2 || major === 3) pos += arg;
    else if (major === 4) todo += arg;
    else if (major === 5) todo += 2 * arg;
    else if (major === 6) todo += 1;
    if (pos > len || todo > len) return undefined;
  }
  return pos;
}

/**
 * The item count of the array under text key `key` of a top-level map, read from the bytes before
 * decoding them: so a record can be refused for its size before it is turned into objects.
 * Undefined when the bytes are not such a map (decoding then reports what is wrong).
 */
export function topLevelArrayLength(b: Uint8Array, key: string): number | undefined {
  const want = Buffer.from(key);
  const m = cborHead(b, 0);
  if (!m || m.major !== 5) return undefined;
  let pos: number | undefined = m.next;
  let found: number | undefined;
  for (let i = 0; i < m.arg && pos !== undefined; i++) {
    const k = cborHead(b, pos);
    if (!k) return undefined;
    const isKey = k.major === 3 && k.arg === want.length && Buffer.from(b.buffer, b.byteOffset + k.next, k.arg).equals(want);
    pos = cborSkip(b, pos);
    if (pos === undefined) return undefined;
    if (isKey) {
      const v = cborHead(b, pos);
      if (v?.major === 4) found = v.arg; // the last one counts, as in decoding
    }
    pos = cborSkip(b, pos);
  }
  return found;
}
