// The LevelDB index: derived data, rebuilt from packs and snapshot records whenever it is missing,
// incomplete or damaged (docs/format.md, "Index"). LevelDB allows one process at a time, so
// opening waits (up to `waitMs`) for another snap process to finish with it.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { displayPath, fsEncode, fsPath, hasEscapedBytes } from '../core/bytes.js';
import { Level } from 'level';
import { SnapError } from '../core/errors.js';
import { randomHex, toHex } from '../core/ids.js';
import type { ProgressSink } from '../core/progress.js';
import { asArray, asBytes, asString, asUint, decodeCbor, encodeCbor } from '../model/cbor.js';
import { decodeSnapshot, type StoredSnapshot } from '../model/snapshot.js';
import type { ObjectType, PackEntry } from '../store/pack.js';
import type { LocationIndex, ObjectLocation } from '../store/object-store.js';
import { checkObjectClaim, type ObjectLimits } from '../store/limits.js';
import { type CachedFile, decodeCachedFile, encodeCachedFile } from './files-cache.js';
import { K_FILE, K_META, K_OBJECT, K_PACK, K_SNAP, K_SNAPID, key, prefixRange } from './keys.js';

type DB = Level<Buffer, Buffer>;
const ENC = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
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

export interface PackInfo {
  id: string;
  size: number;
  count: number;
}

export class LevelIndex implements LocationIndex {
  private constructor(private db: DB, readonly dir: string, private readonly o: IndexOpenOptions) {}

  /** Open (creating if needed). `complete` is false when the index must be (re)built from storage. */
  static async open(dir: string, o: IndexOpenOptions): Promise<{ index: LevelIndex; complete: boolean }> {
    const db = await openWithWait(dir, o);
    const idx = new LevelIndex(db, dir, o);
    let stamp: string | undefined;
    try {
      stamp = await idx.getMeta('complete');
    } catch (e) {
      // A damaged table file (say, truncated) lets LevelDB open but fails the first read: damage,
      // so the caller rebuilds, instead of every command failing with an I/O error.
      await closeDb(db).catch(() => {});
      throw new SnapError('SNAP_CORRUPT', `the repository index at ${displayPath(dir)} cannot be read`, { cause: e });
    }
    const complete = stamp === `${INDEX_VERSION}:${o.repoId}`;
    return { index: idx, complete };
  }

  /** Throw away the whole directory (a damaged LevelDB) and start empty. */
  static async destroy(dir: string): Promise<void> {
    await fsp.rm(fsPath(dir), { recursive: true, force: true });
  }

  async close(): Promise<void> {
    await closeDb(this.db);
    await ownerOnly(this.dir);
  }

  /**
   * Start over with an empty index, in place (the object keeps working for its users). For damage
   * that LevelDB only notices when it reads a table: such an index cannot even be cleared. The old
   * folder is renamed away while still open, so no other process can open it in between.
   */
  async reset(): Promise<void> {
    const old = `${this.dir}.damaged-${randomHex(4)}`;
    await fsp.rename(fsPath(this.dir), fsPath(old));
    await closeDb(this.db).catch(() => {});
    await fsp.rm(fsPath(old), { recursive: true, force: true });
    this.db = await openWithWait(this.dir, this.o);
  }

  // --- meta ---
  async getMeta(name: string): Promise<string | undefined> {
    const v = await this.db.get(key(K_META, name));
    return v === undefined ? undefined : v.toString('utf8');
  }

  async setMeta(name: string, value: string, sync = false): Promise<void> {
    await this.db.put(key(K_META, name), Buffer.from(value), { sync } as never);
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
    await this.db.clear();
  }

  // --- objects and packs ---
  async lookup(id: Buffer): Promise<ObjectLocation | undefined> {
    // Synchronous: a LevelDB read from its cache takes microseconds, while the async call's trip
    // through the thread pool cost 36 µs of main-thread time per chunk (1.5 s of a 12.9 s backup
    // of the corpus's 45k small files, measured with --cpu-prof).
    const v = this.db.getSync(key(K_OBJECT, id));
    if (v === undefined) return undefined;
    const loc = decodeLocation(v);
    // Every reader (restore's own among them) finds objects here: a crafted size is refused before
    // anything is allocated for it.
    checkObjectClaim(id, loc, this.o.limits);
    return loc;
  }

  async addPack(packId: string, size: number, entries: PackEntry[]): Promise<void> {
    const pack = Buffer.from(packId, 'hex');
    const batch = this.db.batch();
    for (const e of entries) {
      batch.put(key(K_OBJECT, e.id), encodeCbor([pack, e.type === 'tree' ? 1 : 0, e.offset, e.length, e.rawLength, e.codec]));
    }
    batch.put(key(K_PACK, pack), encodeCbor([size, entries.length]));
    await batch.write();
  }

  async removePack(packId: string, ids: Buffer[]): Promise<void> {
    const batch = this.db.batch();
    for (const id of ids) batch.del(key(K_OBJECT, id));
    batch.del(key(K_PACK, Buffer.from(packId, 'hex')));
    await batch.write();
  }

  /**
   * Forget packs (gc): delete every object entry that still points into one of them, then their
   * pack entries. One pass over the object entries, written in bounded batches; entries already
   * moved to another pack are kept. Returns how many object entries were deleted.
   */
  async removePacks(packIds: Set<string>): Promise<number> {
    if (packIds.size === 0) return 0;
    let removed = 0;
    let batch = this.db.batch();
    let inBatch = 0;
    for await (const [k, v] of this.db.iterator(prefixRange(Buffer.from([K_OBJECT])))) {
      const a = asArray(decodeCbor(v, 'object index entry'), 'object index entry');
      if (!packIds.has(toHex(asBytes(a[0], 'pack')))) continue;
      batch.del(Buffer.from(k));
      removed++;
      if (++inBatch >= 10_000) {
        await batch.write();
        batch = this.db.batch();
        inBatch = 0;
      }
    }
    for (const p of packIds) batch.del(key(K_PACK, Buffer.from(p, 'hex')));
    await batch.write();
    return removed;
  }

  async getPack(packId: string): Promise<PackInfo | undefined> {
    const v = await this.db.get(key(K_PACK, Buffer.from(packId, 'hex')));
    if (v === undefined) return undefined;
    const a = asArray(decodeCbor(v, 'pack index entry'), 'pack index entry');
    return { id: packId, size: asUint(a[0], 'size'), count: asUint(a[1], 'count') };
  }

  async *packs(): AsyncIterable<PackInfo> {
    for await (const [k, v] of this.db.iterator(prefixRange(Buffer.from([K_PACK])))) {
      const a = asArray(decodeCbor(v, 'pack index entry'), 'pack index entry');
      yield { id: toHex(k.subarray(1)), size: asUint(a[0], 'size'), count: asUint(a[1], 'count') };
    }
  }

  async *objects(): AsyncIterable<[Buffer, ObjectLocation]> {
    for await (const [k, v] of this.db.iterator(prefixRange(Buffer.from([K_OBJECT])))) {
      yield [Buffer.from(k.subarray(1)), decodeLocation(v)];
    }
  }

  // --- snapshots ---
  async putSnapshot(s: StoredSnapshot, bytes: Buffer): Promise<void> {
    const batch = this.db.batch();
    batch.put(key(K_SNAP, s.time, s.id), bytes);
    batch.put(key(K_SNAPID, s.id), Buffer.from(s.time));
    await batch.write();
  }

  async removeSnapshot(id: string): Promise<void> {
    const t = await this.db.get(key(K_SNAPID, id));
    if (t === undefined) return;
    const batch = this.db.batch();
    batch.del(key(K_SNAP, t.toString('latin1'), id));
    batch.del(key(K_SNAPID, id));
    await batch.write();
  }

  /** All snapshots, oldest first. */
  async *snapshots(): AsyncIterable<StoredSnapshot> {
    for await (const [k, v] of this.db.iterator(prefixRange(Buffer.from([K_SNAP])))) {
      // The id is the key's last 64 characters: a key written with a time of another width (an
      // older snap wrote `+010000-...`) must still name the right record, which then fails to decode.
      yield decodeSnapshot(v, k.subarray(k.length - 64).toString('latin1'));
    }
  }

  /** Forget every snapshot entry (both key spaces); reconciling with storage fills them again. */
  async clearSnapshots(): Promise<void> {
    await this.db.clear(prefixRange(Buffer.from([K_SNAP])));
    await this.db.clear(prefixRange(Buffer.from([K_SNAPID])));
  }

  async snapshotIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const k of this.db.keys(prefixRange(Buffer.from([K_SNAPID])))) ids.add(k.subarray(1).toString('latin1'));
    return ids;
  }

  // --- files cache ---
  /** Cached entries of one directory, by name (latin1 of the raw bytes, a lossless key). */
  async filesInDir(dir: Buffer): Promise<Map<string, CachedFile>> {
    const out = new Map<string, CachedFile>();
    const base = key(K_FILE, dir, Buffer.from([0]));
    for await (const [k, v] of this.db.iterator(prefixRange(base))) {
      const f = decodeCachedFile(v);
      if (f) out.set(k.subarray(base.length).toString('latin1'), f);
    }
    return out;
  }

  /**
   * `record`: the directory's record (see getDirRecord) to store, or null to delete it; undefined
   * leaves it as it is.
   */
  async putFilesInDir(dir: Buffer, files: [Buffer, CachedFile][], stale: Buffer[], record?: DirRecord | null): Promise<void> {
    if (files.length === 0 && stale.length === 0 && record === undefined) return;
    const batch = this.db.batch();
    for (const [name, f] of files) batch.put(key(K_FILE, dir, Buffer.from([0]), name), encodeCachedFile(f));
    for (const name of stale) batch.del(key(K_FILE, dir, Buffer.from([0]), name));
    if (record) batch.put(key(K_FILE, dir, Buffer.from([1])), encodeDirRecord(record));
    else if (record === null) batch.del(key(K_FILE, dir, Buffer.from([1])));
    await batch.write();
  }

  /**
   * The directory record of the files cache: a digest of the directory's entries as lstat saw them
   * last time and the tree they made. Read synchronously (see lookup): a backup asks once per
   * directory. Stored under the files-cache prefix, so whatever clears the files cache (gc, by
   * any snap version) clears these too.
   */
  getDirRecord(dir: Buffer): DirRecord | undefined {
    let v: Buffer | undefined;
    try {
      v = this.db.getSync(key(K_FILE, dir, Buffer.from([1])));
    } catch (e) {
      throw levelError(e, 'repository index (getDirRecord)');
    }
    return v === undefined ? undefined : decodeDirRecord(v);
  }

  /** Whether the files cache holds anything for directories whose path starts with `prefix`. */
  async hasFilesUnder(prefix: Buffer): Promise<boolean> {
    for await (const _ of this.db.keys({ ...prefixRange(key(K_FILE, prefix)), limit: 1 })) return true;
    return false;
  }

  async clearFilesCache(): Promise<void> {
    await this.db.clear(prefixRange(Buffer.from([K_FILE])));
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

function decodeLocation(v: Buffer): ObjectLocation {
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

/**
 * LevelDB reports a full disk, damage or a closed database as plain errors with LEVEL_* codes.
 * They are repository failures: SnapErrors, so a full disk is SNAP_NO_SPACE (not an internal
 * error) and `create` never mistakes one for a problem with a source file.
 */
export function levelError(e: unknown, doing: string): unknown {
  if (e instanceof SnapError || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('LEVEL_')) return e;
  if (/No space left|ENOSPC|quota/i.test(e.message)) return new SnapError('SNAP_NO_SPACE', `${doing}: no space left on device`, { cause: e });
  if (/Permission denied|EACCES|EPERM/i.test(e.message)) return new SnapError('SNAP_PERMISSION', `${doing}: permission denied`, { cause: e });
  if (levelCode(e) === 'LEVEL_CORRUPTION') {
    return new SnapError('SNAP_CORRUPT', `${doing}: the index is damaged (${e.message}); 'snap index rebuild' recreates it`, { cause: e });
  }
  return new SnapError('SNAP_IO', `${doing}: ${e.message}`, { cause: e });
}

// Every method of LevelIndex reports LevelDB's errors through levelError (one place instead of a
// try/catch in each method; async generators are wrapped as generators).
for (const name of Object.getOwnPropertyNames(LevelIndex.prototype)) {
  const proto = LevelIndex.prototype as unknown as Record<string, unknown>;
  const fn = proto[name];
  if (name === 'constructor' || typeof fn !== 'function') continue;
  const doing = `repository index (${name})`;
  if (fn.constructor.name === 'AsyncGeneratorFunction') {
    proto[name] = async function* (this: unknown, ...args: unknown[]) {
      try {
        yield* (fn as (...a: unknown[]) => AsyncIterable<unknown>).apply(this, args);
      } catch (e) {
        throw levelError(e, doing);
      }
    };
  } else if (fn.constructor.name === 'AsyncFunction') {
    proto[name] = async function (this: unknown, ...args: unknown[]) {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      } catch (e) {
        throw levelError(e, doing);
      }
    };
  }
}

function levelCode(e: unknown): string | undefined {
  let cur: unknown = e;
  while (cur && typeof cur === 'object') {
    const c = (cur as { code?: unknown }).code;
    if (c === 'LEVEL_LOCKED' || c === 'LEVEL_CORRUPTION') return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * LevelDB creates its files with the process umask (often 0644). The folder is 0700, but the files
 * must be owner-only too (docs/format.md): a copied repository keeps file modes. Run after open
 * and after close; files made in between are protected by the folder.
 */
async function ownerOnly(dir: string): Promise<void> {
  for (const name of await fsp.readdir(fsPath(dir)).catch(() => [] as string[])) {
    const p = fsPath(`${dir}/${name}`);
    const st = await fsp.lstat(p).catch(() => undefined);
    if (st?.isFile() && (st.mode & 0o077) !== 0) await fsp.chmod(p, st.mode & 0o700).catch(() => {});
  }
}

async function openWithWait(dir: string, o: IndexOpenOptions): Promise<DB> {
  // Owner-only, like everything else in the repository: the index names every backed-up path.
  await fsp.mkdir(fsPath(dir), { recursive: true, mode: 0o700 });
  const start = Date.now();
  let told = false;
  for (;;) {
    const { location, release } = levelLocation(dir);
    const db = new Level<Buffer, Buffer>(location, ENC);
    try {
      await db.open();
      await ownerOnly(dir);
      releases.set(db, release);
      return db;
    } catch (e) {
      release();
      const code = levelCode(e);
      if (code === 'LEVEL_LOCKED') {
        const waited = Date.now() - start;
        o.signal?.throwIfAborted();
        if (waited >= o.waitMs) {
          throw new SnapError('SNAP_LOCKED', `the repository index at ${displayPath(dir)} is in use by another snap process (waited ${Math.round(waited / 1000)} s; use --lock-wait to wait longer)`, { cause: e });
        }
        if (!told && waited > 500) {
          o.sink.info?.('waiting for another snap process to release the repository index...');
          told = true;
        }
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // A full disk or a permission problem is not damage: rebuilding would not help.
      const io = levelError(e, `opening the repository index at ${dir}`);
      if (io instanceof SnapError && (io.code === 'SNAP_NO_SPACE' || io.code === 'SNAP_PERMISSION')) throw io;
      throw new SnapError('SNAP_CORRUPT', `the repository index at ${dir} cannot be opened`, { cause: e });
    }
  }
}

/**
 * LevelDB takes its location as a string, and a string cannot hold a path that is not UTF-8: such
 * a folder is opened and reached through /proc/self/fd, held open as long as the database is.
 */
function levelLocation(dir: string): { location: string; release: () => void } {
  if (!hasEscapedBytes(dir)) return { location: dir, release: () => {} };
  const fd = fs.openSync(fsEncode(dir), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  let open = true;
  return {
    location: `/proc/self/fd/${fd}`,
    release: () => {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

const releases = new WeakMap<DB, () => void>();

async function closeDb(db: DB): Promise<void> {
  try {
    await db.close();
  } finally {
    releases.get(db)?.();
  }
}
