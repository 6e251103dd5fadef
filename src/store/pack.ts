// Pack files bundle many objects into one content-addressed file: creating one file per small
// chunk costs ~0.2-1 ms of kernel time here, as long as restic's whole backup for the 48k-file
// corpus (RESULTS.md caveat). Layout (docs/format.md):
//   object bytes ... | header (CBOR) | u32le header length | magic "SNAPPK01"
import { SnapError } from '../core/errors.js';
import { asId, sha256, toHex } from '../core/ids.js';
import type { Backend } from '../backend/backend.js';
import { asArray, asRecord, asUint, decodeCbor, encodeCbor } from '../model/cbor.js';

export const PACK_MAGIC = Buffer.from('SNAPPK01');
export const TRAILER_BYTES = 4 + PACK_MAGIC.length;
export const PACK_VERSION = 1;
/** A header larger than this is corrupt: bounds memory when reading a crafted pack. */
export const MAX_HEADER = 64 * 1024 * 1024;
/**
 * A writer seals a pack at this many objects whatever its size: an entry's header bytes are at
 * most 52 (docs/format.md, "Packs"), so a full pack's header stays under MAX_HEADER. Without it
 * a pack of a million tiny objects (a 16 MiB pack of 10-byte objects) had a header readers refuse.
 */
export const MAX_PACK_ENTRIES = 1_000_000;

export type ObjectType = 'blob' | 'tree';
const TYPE_CODES: Record<ObjectType, number> = { blob: 0, tree: 1 };
const CODE_TYPES: ObjectType[] = ['blob', 'tree'];

export interface PackEntry {
  id: Buffer;
  type: ObjectType;
  offset: number;
  length: number; // stored bytes
  rawLength: number; // uncompressed bytes
  codec: number;
}

export function packName(packId: string): string {
  return `data/${packId.slice(0, 2)}/${packId}`;
}

export function packIdFromName(name: string): string | undefined {
  const m = /^data\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(name);
  return m && m[2]!.startsWith(m[1]!) ? m[2] : undefined;
}

/**
 * Accumulates objects in one buffer until sealed; a pack is written in one put. Objects are
 * copied in as they arrive, so their own buffers become garbage at once and sealing needs no
 * second copy of the pack (the 16 MiB concatenation per pack kept peak RSS over 300 MB for a
 * 1 GiB file). Untouched capacity costs address space, not memory.
 */
export class PackBuilder {
  private buf: Buffer;
  private entries: PackEntry[] = [];
  size = 0;

  /** `buffer`: a recycled buffer to fill (see ObjectStore), or the capacity of a new one. */
  constructor(buffer: Buffer | number = 4 * 1024 * 1024) {
    this.buf = typeof buffer === 'number' ? Buffer.allocUnsafe(buffer) : buffer;
  }

  private reserve(n: number): void {
    if (n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.size);
    this.buf = grown;
  }

  add(id: Buffer, type: ObjectType, data: Buffer, rawLength: number, codec: number): void {
    this.entries.push({ id, type, offset: this.size, length: data.length, rawLength, codec });
    this.reserve(this.size + data.length);
    data.copy(this.buf, this.size);
    this.size += data.length;
  }

  get count(): number {
    return this.entries.length;
  }

  /** Whether the pack should be sealed: its data reached `packSize`, or it holds MAX_PACK_ENTRIES objects. */
  isFull(packSize: number): boolean {
    return this.size >= packSize || this.entries.length >= MAX_PACK_ENTRIES;
  }

  seal(): { id: string; bytes: Buffer; entries: PackEntry[]; buffer: Buffer } {
    const f = this.finish();
    return { id: toHex(sha256(f.bytes)), ...f };
  }

  /**
   * The pack's bytes, its header written after the objects, not yet named: its id is their
   * SHA-256 (seal() computes it here; a backup computes it on a worker thread, object-store.ts).
   * `buffer` is the whole buffer `bytes` starts at, for reuse once the pack is written.
   */
  finish(): { bytes: Buffer; entries: PackEntry[]; buffer: Buffer } {
    const header = encodeCbor({
      v: PACK_VERSION,
      entries: this.entries.map((e) => [TYPE_CODES[e.type], e.id, e.offset, e.length, e.rawLength, e.codec]),
    });
    const total = this.size + header.length + TRAILER_BYTES;
    this.reserve(total);
    header.copy(this.buf, this.size);
    this.buf.writeUInt32LE(header.length, this.size + header.length);
    PACK_MAGIC.copy(this.buf, this.size + header.length + 4);
    const buffer = this.buf;
    const bytes = buffer.subarray(0, total);
    this.buf = Buffer.alloc(0);
    return { bytes, entries: this.entries, buffer };
  }
}

export function decodePackHeader(header: Uint8Array, what: string, payloadBytes: number): PackEntry[] {
  const r = asRecord(decodeCbor(header, what), what);
  if (asUint(r.v, `${what}.v`) !== PACK_VERSION) throw new SnapError('SNAP_CORRUPT', `${what}: unsupported pack version`);
  return asArray(r.entries, `${what}.entries`).map((v, i) => {
    const e = asArray(v, `${what}.entries[${i}]`);
    const type = CODE_TYPES[asUint(e[0], `${what}.entries[${i}].type`)];
    if (!type) throw new SnapError('SNAP_CORRUPT', `${what}.entries[${i}]: unknown object type`);
    const entry: PackEntry = {
      type,
      id: asId(e[1], `${what}.entries[${i}].id`),
      offset: asUint(e[2], `${what}.entries[${i}].offset`),
      length: asUint(e[3], `${what}.entries[${i}].length`),
      rawLength: asUint(e[4], `${what}.entries[${i}].rawLength`),
      codec: asUint(e[5], `${what}.entries[${i}].codec`),
    };
    if (entry.offset + entry.length > payloadBytes) throw new SnapError('SNAP_CORRUPT', `${what}.entries[${i}]: extends past the pack's data`);
    return entry;
  });
}

/** Read the table of contents of a stored pack without reading its objects. */
export async function readPackHeader(backend: Backend, packId: string): Promise<PackEntry[]> {
  const name = packName(packId);
  const what = `pack ${packId.slice(0, 12)}`;
  const st = await backend.stat(name);
  if (!st) throw new SnapError('SNAP_MISSING_OBJECT', `${what} is missing`);
  if (st.size < TRAILER_BYTES) throw new SnapError('SNAP_CORRUPT', `${what} is truncated (${st.size} bytes)`);
  const trailer = await backend.getRange(name, st.size - TRAILER_BYTES, TRAILER_BYTES);
  if (!trailer.subarray(4).equals(PACK_MAGIC)) throw new SnapError('SNAP_CORRUPT', `${what}: trailer magic is wrong (truncated or damaged)`);
  const hlen = trailer.readUInt32LE(0);
  if (hlen > MAX_HEADER || hlen > st.size - TRAILER_BYTES) throw new SnapError('SNAP_CORRUPT', `${what}: header length ${hlen} is impossible`);
  const header = await backend.getRange(name, st.size - TRAILER_BYTES - hlen, hlen);
  return decodePackHeader(header, what, st.size - TRAILER_BYTES - hlen);
}
