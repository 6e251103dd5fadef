// Index files in the repository (docs/format.md, "Index files"): each lists packs and the entries
// of their headers, so a client that has never seen the repository, or that other clients wrote
// to since, learns what is in new packs by reading a few index files instead of one header per
// pack (as restic's and kopia's index blobs do). They are derived: every pack header says the same,
// a pack no index file covers is read from its header, and a damaged index file is only a slower
// catch-up. Written after their packs and before the snapshot record (write order); named by the
// SHA-256 of their bytes and verified on every read like every other blob; sealed like every
// other blob in an encrypted repository.
import { SnapError } from '../core/errors.js';
import { asId, sha256, toHex } from '../core/ids.js';
import type { Backend } from '../backend/backend.js';
import { asArray, asRecord, asUint, decodeCbor, encodeCbor } from '../model/cbor.js';
import { type ObjectType, type PackEntry, TRAILER_BYTES } from '../store/pack.js';

/** The folder of index files: `packindex/<id>`, id the SHA-256 of the file's (plaintext) bytes. */
export const INDEX_FILES = 'packindex/';
export const INDEX_FILE_VERSION = 1;
/**
 * A writer starts a new index file once the one it is filling lists this many objects (a pack is
 * never split): about 5 MB of CBOR, so a backup's memory for them stays bounded.
 */
export const INDEX_FILE_ENTRIES = 100_000;
/** An index file larger than this is not read (damage or a crafted file): about 20 times the above. */
export const MAX_INDEX_FILE_BYTES = 128 * 1024 * 1024;

const TYPE_CODES: Record<ObjectType, number> = { blob: 0, tree: 1 };
const CODE_TYPES: ObjectType[] = ['blob', 'tree'];

/** A pack as an index file lists it: its id (hex), its size in storage, its header's entries. */
export interface IndexedPack {
  id: string;
  size: number;
  entries: PackEntry[];
}

export function indexFileName(id: string): string {
  return `${INDEX_FILES}${id}`;
}

export function indexFileIdFromName(name: string): string | undefined {
  const m = /^packindex\/([0-9a-f]{64})$/.exec(name);
  return m ? m[1] : undefined;
}

/**
 * The bytes of an index file and its id. Packs are sorted by id and entries by offset, so the same
 * packs always make the same file (a gc that changes nothing writes the file it already has).
 */
export function encodeIndexFile(packs: IndexedPack[]): { id: string; bytes: Buffer } {
  const sorted = [...packs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const bytes = encodeCbor({
    v: INDEX_FILE_VERSION,
    packs: sorted.map((p) => [
      Buffer.from(p.id, 'hex'),
      p.size,
      [...p.entries].sort((a, b) => a.offset - b.offset).map((e) => [TYPE_CODES[e.type], e.id, e.offset, e.length, e.rawLength, e.codec]),
    ]),
  });
  return { id: toHex(sha256(bytes)), bytes };
}

/**
 * Verify and decode an index file: its bytes must hash to its name, and every entry must be one a
 * pack header could hold (a known type, a 32-byte id, inside the pack's data part). Anything else
 * is damage (SNAP_CORRUPT naming the file), never used.
 */
export function decodeIndexFile(bytes: Uint8Array, id: string): IndexedPack[] {
  const what = `index file ${indexFileName(id)}`;
  if (toHex(sha256(bytes)) !== id) throw new SnapError('SNAP_CORRUPT', `${what} does not match its name (its content changed after it was written)`);
  const r = asRecord(decodeCbor(bytes, what), what);
  if (asUint(r.v, `${what}.v`) !== INDEX_FILE_VERSION) throw new SnapError('SNAP_CORRUPT', `${what}: unsupported index file version`);
  return asArray(r.packs, `${what}.packs`).map((v, i) => {
    const at = `${what}.packs[${i}]`;
    const p = asArray(v, at);
    const packId = toHex(asId(p[0], `${at}.id`));
    const size = asUint(p[1], `${at}.size`);
    const entries = asArray(p[2], `${at}.entries`).map((ev, j) => {
      const ew = `${at}.entries[${j}]`;
      const e = asArray(ev, ew);
      const type = CODE_TYPES[asUint(e[0], `${ew}.type`)];
      if (!type) throw new SnapError('SNAP_CORRUPT', `${ew}: unknown object type`);
      const entry: PackEntry = {
        type,
        id: asId(e[1], `${ew}.id`),
        offset: asUint(e[2], `${ew}.offset`),
        length: asUint(e[3], `${ew}.length`),
        rawLength: asUint(e[4], `${ew}.rawLength`),
        codec: asUint(e[5], `${ew}.codec`),
      };
      if (entry.offset + entry.length > size - TRAILER_BYTES) throw new SnapError('SNAP_CORRUPT', `${ew}: extends past the pack's data`);
      return entry;
    });
    return { id: packId, size, entries };
  });
}

/** Read, verify and decode one index file (SNAP_CORRUPT when damaged, SNAP_MISSING_OBJECT when gone). */
export async function readIndexFile(backend: Backend, id: string): Promise<IndexedPack[]> {
  const name = indexFileName(id);
  const st = await backend.stat(name);
  if (!st) throw new SnapError('SNAP_MISSING_OBJECT', `index file ${name} is missing`);
  if (st.size > MAX_INDEX_FILE_BYTES) throw new SnapError('SNAP_CORRUPT', `index file ${name} has ${st.size} bytes, more than an index file holds`);
  return decodeIndexFile(await backend.get(name), id);
}

/** The ids of the index files in storage. */
export async function listIndexFiles(backend: Backend): Promise<string[]> {
  const out: string[] = [];
  for await (const b of backend.list(INDEX_FILES)) {
    const id = indexFileIdFromName(b.name);
    if (id) out.push(id);
  }
  return out.sort();
}

/** What the index-file writer needs from the local index. */
export interface PackSink {
  addPack(packId: string, size: number, entries: PackEntry[]): Promise<void>;
  lookup: import('../store/object-store.js').LocationIndex['lookup'];
  lookupNow?: import('../store/object-store.js').LocationIndex['lookupNow'];
  /** Whether this process holds the index (its lookups are answered at once). */
  readonly isOwner?: boolean;
  /** Note that this client has taken in the packs of an index file (it is not read again). */
  markIndexFileSeen(id: string): Promise<void>;
}

/**
 * The index the object store and the pack rewriters write through: every pack goes to the local
 * index as before and, when `enabled`, into the next index file, written once it lists
 * INDEX_FILE_ENTRIES objects or when flush() is called (before a snapshot record, at close). The
 * packs are durable before addPack is called, so an index file never names a pack that is not.
 */
export class IndexFileWriter {
  /**
   * Packs waiting for the next index file, their entries packed (packEntries): as PackEntry
   * objects, each with an id Buffer of its own, the 100,000 an index file may list held 30-40 MiB
   * of a backup's heap until written (docs/performance.md, "Memory of a first backup: files-cache
   * entries, index-file entries, malloc arenas").
   */
  private pending: PendingPack[] = [];
  private pendingEntries = 0;
  /** Index files this writer wrote (ids). */
  readonly written: string[] = [];

  constructor(
    private readonly backend: Backend,
    private readonly index: PackSink,
    readonly enabled: boolean,
  ) {}

  lookup(id: Buffer): ReturnType<PackSink['lookup']> {
    return this.index.lookup(id);
  }

  lookupNow(id: Buffer): ReturnType<NonNullable<PackSink['lookupNow']>> {
    return this.index.lookupNow ? this.index.lookupNow(id) : this.index.lookup(id);
  }

  get answersAtOnce(): boolean {
    return this.index.lookupNow !== undefined && this.index.isOwner !== false;
  }

  async addPack(packId: string, size: number, entries: PackEntry[]): Promise<void> {
    await this.index.addPack(packId, size, entries);
    if (!this.enabled) return;
    this.pending.push({ id: packId, size, entries: packEntries(entries), count: entries.length });
    this.pendingEntries += entries.length;
    if (this.pendingEntries >= INDEX_FILE_ENTRIES) await this.flush();
  }

  /** Whether packs wait for their index file. */
  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Write the packs added since the last index file into a new one (nothing when there are none). */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const packs = this.pending;
    this.pending = [];
    this.pendingEntries = 0;
    try {
      const { id, bytes } = encodeIndexFile(packs.map((p) => ({ id: p.id, size: p.size, entries: unpackEntries(p.entries) })));
      await this.backend.put(indexFileName(id), bytes);
      await this.index.markIndexFileSeen(id);
      this.written.push(id);
    } catch (e) {
      // Not written: kept for the next try (the packs stay covered by their headers meanwhile).
      this.pending = [...packs, ...this.pending];
      this.pendingEntries = this.pending.reduce((n, p) => n + p.count, 0);
      throw e;
    }
  }
}

/** A pack waiting for its index file: its entries packed by packEntries. */
interface PendingPack {
  id: string;
  size: number;
  entries: Buffer;
  count: number;
}

/** Bytes per packed entry: id, type, codec, and offset, length and raw length (48-bit little-endian each). */
const PACKED_ENTRY = 32 + 1 + 1 + 3 * 6;

/** A pack's entries in one buffer of PACKED_ENTRY bytes each (unpackEntries reads them back). */
export function packEntries(entries: readonly PackEntry[]): Buffer {
  const b = Buffer.allocUnsafeSlow(entries.length * PACKED_ENTRY);
  entries.forEach((e, i) => {
    const p = i * PACKED_ENTRY;
    if (e.id.length !== 32 || e.codec < 0 || e.codec > 255) throw new SnapError('SNAP_INTERNAL', `a pack entry that cannot be packed (id of ${e.id.length} bytes, codec ${e.codec})`);
    e.id.copy(b, p);
    b[p + 32] = TYPE_CODES[e.type];
    b[p + 33] = e.codec;
    b.writeUIntLE(e.offset, p + 34, 6);
    b.writeUIntLE(e.length, p + 40, 6);
    b.writeUIntLE(e.rawLength, p + 46, 6);
  });
  return b;
}

/** The entries packEntries packed, in their order. */
export function unpackEntries(b: Buffer): PackEntry[] {
  const out: PackEntry[] = [];
  for (let p = 0; p + PACKED_ENTRY <= b.length; p += PACKED_ENTRY) {
    out.push({ id: b.subarray(p, p + 32), type: CODE_TYPES[b[p + 32]!]!, codec: b[p + 33]!, offset: b.readUIntLE(p + 34, 6), length: b.readUIntLE(p + 40, 6), rawLength: b.readUIntLE(p + 46, 6) });
  }
  return out;
}
