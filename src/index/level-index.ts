// The LevelDB index: derived data, rebuilt from packs and snapshot records whenever it is missing,
// incomplete or damaged (docs/format.md, "Index"). Written against the key-value operations of
// kv.ts: a LevelDB this process opened (LocalKV), or one shared by several snap processes, owned
// by one and reached by the others over a socket (SharedKV, docs/design.md "Sharing the index").
import * as fsp from 'node:fs/promises';
import { displayPath, fsPath } from '../core/bytes.js';
import { SnapError } from '../core/errors.js';
import { toHex } from '../core/ids.js';
import type { ProgressSink } from '../core/progress.js';
import { asArray, asBytes, asUint, decodeCbor, encodeCbor } from '../model/cbor.js';
import { decodeSnapshot, type StoredSnapshot } from '../model/snapshot.js';
import type { ObjectType, PackEntry } from '../store/pack.js';
import type { LocationIndex, ObjectLocation } from '../store/object-store.js';
import { checkObjectClaim, type ObjectLimits } from '../store/limits.js';
import { type CachedFile, decodeCachedFile, unpackCachedFiles } from './files-cache.js';
import { K_FILE, K_META, K_OBJECT, K_PACK, K_SNAP, K_SNAPID, key, prefixRange } from './keys.js';
import { type KV, type KvOp, LOCKED, LocalKV, levelError } from './kv.js';
import { MemoryKV } from './memory-kv.js';
import { ObjectTable } from './object-table.js';
import { SharedKV, type SharedOpenOptions } from './shared-kv.js';

export { levelError } from './kv.js';

const INDEX_VERSION = '1';

export interface IndexOpenOptions {
  repoId: string;
  waitMs: number;
  sink: ProgressSink;
  /** Stops the wait for another process (Ctrl-C). */
  signal?: AbortSignal;
  /** Object sizes the repository's config allows: a location claiming more is refused (SNAP_CORRUPT). */
  limits?: ObjectLimits;
}

export interface SharedIndexOptions extends Omit<SharedOpenOptions, 'prepare'> {
  repoId: string;
  /** Run when this process becomes the owner (see SharedOpenOptions.prepare); gets the index. */
  prepare?: (index: LevelIndex) => Promise<void>;
  /** Object sizes the repository's config allows: a location claiming more is refused (SNAP_CORRUPT). */
  limits?: ObjectLimits;
}

export interface PackInfo {
  id: string;
  size: number;
  count: number;
}

/** Files-cache changes written together (putFilesInDirs): about 0.5 MB of keys and values. */
const FILES_WRITE_OPS = 4096;
/** The most deletions in one LevelDB write of deleteWhere. */
const DELETE_BATCH = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LevelIndex implements LocationIndex {
  private constructor(
    private readonly kv: KV,
    readonly dir: string,
    private readonly limits?: ObjectLimits,
  ) {}

  /**
   * Open the LevelDB in this process only (creating it if needed), waiting up to `waitMs` for
   * another process that holds it. `complete` is false when the index must be (re)built.
   */
  static async open(dir: string, o: IndexOpenOptions): Promise<{ index: LevelIndex; complete: boolean }> {
    const start = Date.now();
    let told = false;
    let kv: LocalKV | typeof LOCKED;
    while ((kv = await LocalKV.tryOpen(dir)) === LOCKED) {
      const waited = Date.now() - start;
      o.signal?.throwIfAborted();
      if (waited >= o.waitMs) {
        throw new SnapError('SNAP_LOCKED', `the repository index at ${displayPath(dir)} is in use by another snap process (waited ${Math.round(waited / 1000)} s; use --lock-wait to wait longer)`);
      }
      if (!told && waited > 500) {
        o.sink.info?.('waiting for another snap process to release the repository index...');
        told = true;
      }
      await sleep(100);
    }
    const idx = new LevelIndex(kv, dir, o.limits);
    let complete: boolean;
    try {
      complete = await idx.isComplete(o.repoId);
    } catch (e) {
      // A damaged table file (say, truncated) lets LevelDB open but fails the first read: damage,
      // so the caller rebuilds, instead of every command failing with an I/O error.
      await kv.close().catch(() => {});
      throw new SnapError('SNAP_CORRUPT', `the repository index at ${displayPath(dir)} cannot be read`, { cause: e });
    }
    return { index: idx, complete };
  }

  /**
   * Open the index shared with other snap processes (shared-kv.ts): this process becomes its owner,
   * or a client of the process that owns it. `prepare` runs whenever this process becomes the
   * owner, before it serves others (rebuild an incomplete index there).
   */
  static async openShared(dir: string, o: SharedIndexOptions): Promise<LevelIndex> {
    const { prepare, limits, ...rest } = o;
    const kv = SharedKV.create(dir, { ...rest, prepare: prepare && (() => prepare(idx)) });
    const idx = new LevelIndex(kv, dir, limits);
    await kv.start();
    return idx;
  }

  /**
   * An index in this process's memory, empty (memory-kv.ts): for a command that only reads, when
   * the LevelDB at `dir` cannot be opened for lack of space. The caller rebuilds it.
   */
  static inMemory(dir: string, limits?: ObjectLimits): LevelIndex {
    return new LevelIndex(new MemoryKV(), dir, limits);
  }

  /** Whether every record is present for this repository (false: rebuild from storage). */
  async isComplete(repoId: string): Promise<boolean> {
    return (await this.getMeta('complete')) === `${INDEX_VERSION}:${repoId}`;
  }

  /** Whether this process holds the LevelDB itself (false: another snap process serves it). */
  get isOwner(): boolean {
    return !(this.kv instanceof SharedKV) || this.kv.isOwner;
  }

  /** The SharedKV underneath, if shared (tests, diagnostics). */
  get shared(): SharedKV | undefined {
    return this.kv instanceof SharedKV ? this.kv : undefined;
  }

  /** Throw away the whole directory (a damaged LevelDB) and start empty. */
  static async destroy(dir: string): Promise<void> {
    await fsp.rm(fsPath(dir), { recursive: true, force: true });
  }

  async close(): Promise<void> {
    await this.kv.close();
  }

  /**
   * Start over with an empty index, in place (the object keeps working for its users). For damage
   * that LevelDB only notices when it reads a table: such an index cannot even be cleared.
   */
  async reset(): Promise<void> {
    await this.kv.reset();
  }

  // --- meta ---
  async getMeta(name: string): Promise<string | undefined> {
    const v = await this.kv.get(key(K_META, name));
    return v === undefined ? undefined : v.toString('utf8');
  }

  async setMeta(name: string, value: string, sync = false): Promise<void> {
    await this.kv.write([[key(K_META, name), Buffer.from(value)]], sync);
  }

  /** Note that the packs of the repository's index file `id` are in this index (repo/index-files.ts). */
  async markIndexFileSeen(id: string): Promise<void> {
    await this.setMeta(`seen:${id}`, '1');
  }

  async isIndexFileSeen(id: string): Promise<boolean> {
    return (await this.getMeta(`seen:${id}`)) !== undefined;
  }

  async markComplete(repoId: string): Promise<void> {
    await this.setMeta('complete', `${INDEX_VERSION}:${repoId}`, true);
  }

  /**
   * A synchronous LevelDB write flushes its log, and with it every earlier write: called before a
   * snapshot record is written, so the index survives a power loss that the record survives.
   */
  async sync(): Promise<void> {
    await this.setMeta('synced', new Date().toISOString(), true);
  }

  /** Remove every derived record (objects, packs, snapshots, files cache). */
  async clear(): Promise<void> {
    await this.kv.clear();
  }

  // --- objects and packs ---
  async lookup(id: Buffer): Promise<ObjectLocation | undefined> {
    // Synchronous in the owner: a LevelDB read from its cache takes microseconds, while the async
    // call's trip through the thread pool cost 36 µs of main-thread time per chunk (1.5 s of a
    // 12.9 s backup of the corpus's 45k small files, measured with --cpu-prof). A client's
    // lookups made in one turn travel to the owner in one request.
    return this.lookupNow(id);
  }

  /**
   * lookup without a promise when this process holds the LevelDB (a client's lookup is still a
   * promise): for the restore's per-file path, where an async call per file was a good part of the
   * main thread's garbage. LevelDB's errors are reported as lookup's are.
   */
  lookupNow(id: Buffer): ObjectLocation | undefined | Promise<ObjectLocation | undefined> {
    let v: Buffer | undefined | Promise<Buffer | undefined>;
    try {
      v = this.kv.get(objectKey(id));
    } catch (e) {
      throw levelError(e, 'repository index (lookup)');
    }
    if (v instanceof Promise) {
      return v.then(
        (b) => this.located(id, b),
        (e: unknown) => {
          throw levelError(e, 'repository index (lookup)');
        },
      );
    }
    return this.located(id, v);
  }

  /**
   * Many lookups in one call: the LevelDB reads run on a thread of the pool while this thread goes
   * on (a restore from remote storage plans every chunk of the snapshot before it writes).
   */
  async lookupMany(ids: Buffer[]): Promise<(ObjectLocation | undefined)[]> {
    let vals: (Buffer | undefined)[];
    try {
      vals = await this.kv.getMany(ids.map(objectKey));
    } catch (e) {
      throw levelError(e, 'repository index (lookup)');
    }
    return vals.map((v, i) => this.located(ids[i]!, v));
  }

  private located(id: Buffer, v: Buffer | undefined): ObjectLocation | undefined {
    if (v === undefined) return undefined;
    const loc = decodeLocation(v);
    // Every reader (restore's own among them) finds objects here: a crafted size is refused before
    // anything is allocated for it.
    checkObjectClaim(id, loc, this.limits);
    return loc;
  }

  async addPack(packId: string, size: number, entries: PackEntry[]): Promise<void> {
    await this.addPacks([{ id: packId, size, entries }]);
  }

  /** Several packs in one write (an index file's packs: one LevelDB batch instead of one per pack). */
  async addPacks(packs: { id: string; size: number; entries: PackEntry[] }[]): Promise<void> {
    const ops: KvOp[] = [];
    for (const p of packs) {
      const pack = Buffer.from(p.id, 'hex');
      for (const e of p.entries) {
        ops.push([key(K_OBJECT, e.id), encodeCbor([pack, e.type === 'tree' ? 1 : 0, e.offset, e.length, e.rawLength, e.codec])]);
      }
      ops.push([key(K_PACK, pack), encodeCbor([p.size, p.entries.length])]);
    }
    if (ops.length > 0) await this.kv.write(ops);
  }

  async removePack(packId: string, ids: Buffer[]): Promise<void> {
    const ops: KvOp[] = ids.map((id) => [key(K_OBJECT, id), undefined]);
    ops.push([key(K_PACK, Buffer.from(packId, 'hex')), undefined]);
    await this.kv.write(ops);
  }

  /**
   * Forget packs (gc): delete every object entry that still points into one of them, then their
   * pack entries. One pass over the object entries, written in bounded batches; entries already
   * moved to another pack are kept. Returns how many object entries were deleted; `removed`, when
   * given, is told each deleted object's id.
   */
  async removePacks(packIds: Set<string>, removed?: (id: Buffer) => void): Promise<number> {
    if (packIds.size === 0) return 0;
    const packs = [...packIds].map((p): KvOp => [key(K_PACK, Buffer.from(p, 'hex')), undefined]);
    return this.deleteWhere(K_OBJECT, (k, v) => {
      const a = asArray(decodeCbor(v, 'object index entry'), 'object index entry');
      if (!packIds.has(toHex(asBytes(a[0], 'pack')))) return false;
      removed?.(Buffer.from(k.subarray(1)));
      return true;
    }, packs);
  }

  async getPack(packId: string): Promise<PackInfo | undefined> {
    const v = await this.kv.get(key(K_PACK, Buffer.from(packId, 'hex')));
    if (v === undefined) return undefined;
    const a = asArray(decodeCbor(v, 'pack index entry'), 'pack index entry');
    return { id: packId, size: asUint(a[0], 'size'), count: asUint(a[1], 'count') };
  }

  async *packs(): AsyncIterable<PackInfo> {
    for await (const [k, v] of this.kv.iterate(prefixRange(Buffer.from([K_PACK])))) {
      const a = asArray(decodeCbor(v, 'pack index entry'), 'pack index entry');
      yield { id: toHex(k.subarray(1)), size: asUint(a[0], 'size'), count: asUint(a[1], 'count') };
    }
  }

  /**
   * Every object's location, read in one pass and held compactly (index/object-table.ts): for a
   * reader that looks up every object (check); its finds answer as lookup does.
   */
  async objectTable(): Promise<ObjectTable> {
    const t = new ObjectTable(this.limits);
    for await (const [k, v] of this.kv.iterate(prefixRange(Buffer.from([K_OBJECT])))) t.add(k.subarray(1), decodeLocation(v));
    return t;
  }

  async *objects(): AsyncIterable<[Buffer, ObjectLocation]> {
    for await (const [k, v] of this.kv.iterate(prefixRange(Buffer.from([K_OBJECT])))) {
      yield [Buffer.from(k.subarray(1)), decodeLocation(v)];
    }
  }

  // --- snapshots ---
  async putSnapshot(s: StoredSnapshot, bytes: Buffer): Promise<void> {
    await this.kv.write([
      [key(K_SNAP, s.time, s.id), bytes],
      [key(K_SNAPID, s.id), Buffer.from(s.time)],
    ]);
  }

  async removeSnapshot(id: string): Promise<void> {
    const t = await this.kv.get(key(K_SNAPID, id));
    if (t === undefined) return;
    await this.kv.write([
      [key(K_SNAP, t.toString('latin1'), id), undefined],
      [key(K_SNAPID, id), undefined],
    ]);
  }

  /** All snapshots, oldest first. */
  async *snapshots(): AsyncIterable<StoredSnapshot> {
    for await (const [k, v] of this.kv.iterate(prefixRange(Buffer.from([K_SNAP])))) {
      // The id is the key's last 64 characters: a key written with a time of another width (an
      // older snap wrote `+010000-...`) must still name the right record, which then fails to decode.
      yield decodeSnapshot(v, k.subarray(k.length - 64).toString('latin1'));
    }
  }

  /** Forget every snapshot entry (both key spaces); reconciling with storage fills them again. */
  async clearSnapshots(): Promise<void> {
    await this.kv.clear(prefixRange(Buffer.from([K_SNAP])));
    await this.kv.clear(prefixRange(Buffer.from([K_SNAPID])));
  }

  /**
   * The ids of snapshots whose two entries agree (the record under its time, and the id's time),
   * and the keys of entries without their partner, by id. Those come from damage (LevelDB does not
   * verify table checksums on reads, and a flipped byte in a key moves it out of its range or
   * changes the id in it) or from a write or removal of another process seen half (this reads the
   * two key spaces one after the other). Reconciling with storage writes the pair again or removes
   * the rest (Repository.reconcileSnapshots). Both key spaces are read by key only.
   */
  async snapshotEntries(): Promise<{ ids: Set<string>; strays: Map<string, Buffer[]> }> {
    const times = new Map<string, string>();
    for await (const [k, v] of this.kv.iterate(prefixRange(Buffer.from([K_SNAPID])))) times.set(k.subarray(1).toString('latin1'), v.toString('latin1'));
    const ids = new Set<string>();
    const strays = new Map<string, Buffer[]>();
    const stray = (id: string, k: Buffer): void => {
      strays.set(id, [...(strays.get(id) ?? []), k]);
    };
    for await (const [k] of this.kv.iterate(prefixRange(Buffer.from([K_SNAP])), true)) {
      const id = snapKeyId(k);
      if (times.get(id) === snapKeyTime(k) && !ids.has(id)) ids.add(id);
      else stray(id, k);
    }
    for (const id of times.keys()) if (!ids.has(id)) stray(id, key(K_SNAPID, id));
    return { ids, strays };
  }

  /** Delete index keys (the strays of snapshotEntries). */
  async removeKeys(keys: Buffer[]): Promise<void> {
    await this.kv.write(keys.map((k) => [k, undefined] as KvOp));
  }

  // --- files cache ---
  /** Cached entries of one directory, by name (latin1 of the raw bytes, a lossless key). */
  async filesInDir(dir: Buffer): Promise<Map<string, CachedFile>> {
    const out = new Map<string, CachedFile>();
    const base = key(K_FILE, dir, Buffer.from([0]));
    for (const [k, v] of await this.kv.entries(prefixRange(base))) {
      const f = decodeCachedFile(v);
      if (f) out.set(k.subarray(base.length).toString('latin1'), f);
    }
    return out;
  }

  /**
   * Files-cache changes of many directories: each directory's `files` entries (packCachedFiles)
   * written, its `stale` names removed, and its `record` (see getDirRecord) stored, or deleted
   * when null, or left as it is when undefined. A few LevelDB writes (each directory's changes in one of them, whole)
   * instead of one awaited write per directory (a backup of the bench corpus made 3,300 of them,
   * most of them at its end).
   */
  async putFilesInDirs(dirs: Iterable<{ dir: Buffer; files: Buffer; stale: Buffer[]; record?: DirRecord | null }>): Promise<void> {
    let ops: KvOp[] = [];
    for (const { dir, files, stale, record } of dirs) {
      for (const [name, value] of unpackCachedFiles(files)) ops.push([key(K_FILE, dir, Buffer.from([0]), name), value]);
      for (const name of stale) ops.push([key(K_FILE, dir, Buffer.from([0]), name), undefined]);
      if (record) ops.push([key(K_FILE, dir, Buffer.from([1])), encodeDirRecord(record)]);
      else if (record === null) ops.push([key(K_FILE, dir, Buffer.from([1])), undefined]);
      if (ops.length >= FILES_WRITE_OPS) {
        await this.kv.write(ops);
        ops = [];
      }
    }
    if (ops.length > 0) await this.kv.write(ops);
  }

  /**
   * The directory record of the files cache: a digest of the directory's entries as lstat saw them
   * last time and the tree they made. A backup asks once per directory (a synchronous read in the
   * owner, see lookup). Stored under the files-cache prefix, so whatever clears the files cache
   * (gc, by any snap version) clears these too.
   */
  async getDirRecord(dir: Buffer): Promise<DirRecord | undefined> {
    const v = await this.kv.get(key(K_FILE, dir, Buffer.from([1])));
    return v === undefined ? undefined : decodeDirRecord(v);
  }

  /** Whether the files cache holds anything for directories whose path starts with `prefix`. */
  async hasFilesUnder(prefix: Buffer): Promise<boolean> {
    for await (const _ of this.kv.iterate(prefixRange(key(K_FILE, prefix)), true)) return true;
    return false;
  }

  async clearFilesCache(): Promise<void> {
    await this.kv.clear(prefixRange(Buffer.from([K_FILE])));
  }

  /**
   * Drop the files-cache entries that name an object `keep` refuses (one that is going: gc's, or a
   * gc's elsewhere), and the directory records whose tree it refuses; the rest stays, so the next
   * backup still skips the files that did not change (clearing it all made that backup read every
   * file again). Entries that do not decode go too. Returns how many went.
   */
  async pruneFilesCache(keep: (id: Buffer) => boolean): Promise<number> {
    return this.deleteWhere(K_FILE, (k, v) => {
      // A file's entry has a 0x00 after its folder's path (paths hold none); a folder's record has none.
      if (k.indexOf(0, 1) >= 0) {
        const f = decodeCachedFile(v);
        return f === undefined || !f.chunks.every((c) => keep(c));
      }
      const r = decodeDirRecord(v);
      return r === undefined || !keep(r.tree);
    });
  }

  /**
   * Delete the entries of the `prefix` kind that `drop` picks, in one pass: LevelDB writes of at
   * most DELETE_BATCH deletions as it goes, `tail` in the last one. Returns how many it deleted.
   */
  private async deleteWhere(prefix: number, drop: (k: Buffer, v: Buffer) => boolean, tail: KvOp[] = []): Promise<number> {
    let count = 0;
    let ops: KvOp[] = [];
    for await (const [k, v] of this.kv.iterate(prefixRange(Buffer.from([prefix])))) {
      if (!drop(k, v)) continue;
      ops.push([Buffer.from(k), undefined]);
      count++;
      if (ops.length >= DELETE_BATCH) {
        await this.kv.write(ops);
        ops = [];
      }
    }
    ops.push(...tail);
    if (ops.length > 0) await this.kv.write(ops);
    return count;
  }
}

export interface DirRecord {
  digest: Buffer;
  tree: Buffer;
}

const DIR_RECORD_VERSION = 1;

function encodeDirRecord(r: DirRecord): Buffer {
  return Buffer.concat([Buffer.from([DIR_RECORD_VERSION]), r.digest, r.tree]);
}

function decodeDirRecord(v: Buffer): DirRecord | undefined {
  // Anything else (another version, damage) only means the directory is examined file by file.
  if (v.length !== 65 || v[0] !== DIR_RECORD_VERSION) return undefined;
  return { digest: Buffer.from(v.subarray(1, 33)), tree: Buffer.from(v.subarray(33, 65)) };
}

/** An object's key (`key(K_OBJECT, id)` without the arrays: this runs once per lookup). */
function objectKey(id: Buffer): Buffer {
  const k = Buffer.allocUnsafe(1 + id.length);
  k[0] = K_OBJECT;
  id.copy(k, 1);
  return k;
}

/** The unsigned integer at `v[p]` (CBOR major type 0, up to 4 bytes of argument) and where it ends, or -1 for anything else. */
let uintEnd = 0;
function smallUint(v: Buffer, p: number): number {
  const h = v[p];
  if (h === undefined || h > 0x1a) return -1;
  if (h < 0x18) {
    uintEnd = p + 1;
    return h;
  }
  const n = h === 0x18 ? 1 : h === 0x19 ? 2 : 4;
  if (p + 1 + n > v.length) return -1;
  uintEnd = p + 1 + n;
  return n === 1 ? v[p + 1]! : n === 2 ? v.readUInt16BE(p + 1) : v.readUInt32BE(p + 1);
}

function decodeLocation(v: Buffer): ObjectLocation {
  // As the index writes it (encodeCbor of [pack, type, offset, length, rawLength, codec]): an array
  // of six, a byte string of 32, then five small unsigned integers. Read in place; anything else
  // (larger numbers, another encoding) goes through the decoder and its checks.
  if (v.length >= 40 && v[0] === 0x86 && v[1] === 0x58 && v[2] === 0x20) {
    const t = smallUint(v, 35);
    const offset = t < 0 ? -1 : smallUint(v, uintEnd);
    const length = offset < 0 ? -1 : smallUint(v, uintEnd);
    const rawLength = length < 0 ? -1 : smallUint(v, uintEnd);
    const codec = rawLength < 0 ? -1 : smallUint(v, uintEnd);
    if (codec >= 0 && uintEnd === v.length) {
      return { pack: v.toString('hex', 3, 35), type: (t === 1 ? 'tree' : 'blob') as ObjectType, offset, length, rawLength, codec };
    }
  }
  const a = asArray(decodeCbor(v, 'object index entry'), 'object index entry');
  const t = asUint(a[1], 'type');
  return {
    pack: toHex(asBytes(a[0], 'pack')),
    type: (t === 1 ? 'tree' : 'blob') as ObjectType,
    offset: asUint(a[2], 'offset'),
    length: asUint(a[3], 'length'),
    rawLength: asUint(a[4], 'rawLength'),
    codec: asUint(a[5], 'codec'),
  };
}

// Every method of LevelIndex reports LevelDB's errors through levelError (one place instead of a
// try/catch in each method; async generators are wrapped as generators).
for (const name of Object.getOwnPropertyNames(LevelIndex.prototype)) {
  const proto = LevelIndex.prototype as unknown as Record<string, unknown>;
  const fn = proto[name];
  if (name === 'constructor' || typeof fn !== 'function') continue;
  // The folder is named: a remote repository's index lives in the cache folder, a disk of its own.
  const doing = (self: unknown): string => `the repository index at ${displayPath((self as LevelIndex).dir)} (${name})`;
  if (fn.constructor.name === 'AsyncGeneratorFunction') {
    proto[name] = async function* (this: unknown, ...args: unknown[]) {
      try {
        yield* (fn as (...a: unknown[]) => AsyncIterable<unknown>).apply(this, args);
      } catch (e) {
        throw levelError(e, doing(this));
      }
    };
  } else if (fn.constructor.name === 'AsyncFunction') {
    proto[name] = async function (this: unknown, ...args: unknown[]) {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      } catch (e) {
        throw levelError(e, doing(this));
      }
    };
  }
}

/** The id in a snapshot entry's key (`s` + time + id): its last 64 characters. */
export function snapKeyId(k: Buffer): string {
  return k.subarray(Math.max(1, k.length - 64)).toString('latin1');
}

/** The time in a snapshot entry's key: what lies between the prefix and the id. */
export function snapKeyTime(k: Buffer): string {
  return k.subarray(1, Math.max(1, k.length - 64)).toString('latin1');
}
