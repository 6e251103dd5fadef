// The key-value operations the index is written against (index/level-index.ts), and LocalKV, the
// LevelDB that a process opened itself. SharedKV (shared-kv.ts) offers the same operations over a
// LevelDB that another snap process may own (docs/design.md, "Sharing the index").
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Level } from 'level';
import { displayPath, fsEncode, fsPath, hasEscapedBytes } from '../core/bytes.js';
import { checkTables, recordWrittenTables, tableStamps } from './table-check.js';
import { SnapError, fromSystemError } from '../core/errors.js';
import { randomHex } from '../core/ids.js';
import { makeDirs } from '../core/durable.js';

export interface KeyRange {
  gte?: Buffer;
  gt?: Buffer;
  lt: Buffer;
}

/** A put (value given) or a delete (value undefined). */
export type KvOp = [key: Buffer, value: Buffer | undefined];

export interface KV {
  /** A value, synchronously when the database is in this process (the backup's hot path). */
  get(key: Buffer): Buffer | undefined | Promise<Buffer | undefined>;
  /** Values of many keys in one call (LevelDB reads them on a thread of the pool, not this one). */
  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>;
  /** Atomic; `sync` flushes LevelDB's log (and with it every earlier write) to disk. */
  write(ops: KvOp[], sync?: boolean): Promise<void>;
  /** Entries in key order; keys only when `keysOnly` (values are then empty). */
  iterate(range: KeyRange, keysOnly?: boolean): AsyncIterable<[Buffer, Buffer]>;
  /**
   * A range's entries in key order, in one array: for ranges known to be small (one directory's
   * files-cache entries). LevelDB hands them over a thousand at a time, not one promise each.
   */
  entries(range: KeyRange): Promise<[Buffer, Buffer][]>;
  clear(range?: KeyRange): Promise<void>;
  /** Start over with an empty database in place: for damage LevelDB only notices while reading. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

type DB = Level<Buffer, Buffer>;
const ENC = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

/** The LevelDB LOCK is held by another process (tryOpen's answer instead of an error). */
export const LOCKED = Symbol('locked');

export class LocalKV implements KV {
  private constructor(
    private db: DB,
    private release: () => void,
    readonly dir: string,
    /** The tables there before the open (table-check.ts): those not among them LevelDB wrote for this process. */
    private tablesBefore: Map<string, string>,
  ) {}

  /**
   * Open (creating if needed), or LOCKED when another process holds the database. Damage and I/O
   * failures are thrown as SnapErrors (SNAP_CORRUPT for damage, so the caller rebuilds).
   */
  static async tryOpen(dir: string): Promise<LocalKV | typeof LOCKED> {
    // Owner-only, like everything else in the repository: the index names every backed-up path.
    await makeDirs(dir, 0o700).catch((e: unknown) => {
      throw fromSystemError(e, `making the folder of the repository index ${displayPath(dir)}`);
    });
    const { location, release } = levelLocation(dir);
    let before: Awaited<ReturnType<typeof tableStamps>>;
    try {
      before = await tableStamps(dir);
    } catch (e) {
      release();
      throw e instanceof SnapError ? e : fromSystemError(e, `reading the repository index at ${displayPath(dir)}`);
    }
    // Made only now: a Level opens itself a moment after it is made, and its open writes the last
    // run's log into a table, which the stamps above must not count as there before (it would not
    // be recorded at the close; the whole suite caught it under load).
    const db = new Level<Buffer, Buffer>(location, ENC);
    try {
      await db.open();
    } catch (e) {
      release();
      if (levelCode(e) === 'LEVEL_LOCKED') return LOCKED;
      // A full disk, a read-only one or a permission problem is not damage: rebuilding would not help.
      const io = levelError(e, `opening the repository index at ${displayPath(dir)}`);
      if (io instanceof SnapError && (io.code === 'SNAP_NO_SPACE' || io.code === 'SNAP_READ_ONLY' || io.code === 'SNAP_PERMISSION')) throw io;
      throw new SnapError('SNAP_CORRUPT', `the repository index at ${displayPath(dir)} cannot be opened`, { cause: e });
    }
    await ownerOnly(dir);
    // Before anything reads the tables: LevelDB does not verify their checksums itself, and some
    // damage makes it abort the process instead of failing a read (table-check.ts).
    const failure = await checkTables(dir, { before }).then(
      (damage) => damage && new SnapError('SNAP_CORRUPT', `the repository index at ${displayPath(dir)} is damaged: ${damage}`, { cause: new Error(damage) }),
      (e: unknown) => (e instanceof SnapError ? e : fromSystemError(e, `checking the repository index at ${displayPath(dir)}`)),
    );
    if (failure) {
      await db.close().catch(() => {});
      release();
      throw failure;
    }
    return new LocalKV(db, release, dir, before);
  }

  get(key: Buffer): Buffer | undefined {
    try {
      return this.db.getSync(key);
    } catch (e) {
      throw syncReadError(e, this.dir);
    }
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    try {
      return await this.db.getMany(keys);
    } catch (e) {
      throw syncReadError(e, this.dir);
    }
  }

  async write(ops: KvOp[], sync = false): Promise<void> {
    if (ops.length === 0) return;
    const batch = this.db.batch();
    for (const [k, v] of ops) {
      if (v === undefined) batch.del(k);
      else batch.put(k, v);
    }
    await batch.write({ sync } as never);
  }

  async *iterate(range: KeyRange, keysOnly = false): AsyncIterable<[Buffer, Buffer]> {
    if (keysOnly) {
      for await (const k of this.db.keys(range)) yield [k, EMPTY];
    } else {
      for await (const [k, v] of this.db.iterator(range)) yield [k, v];
    }
  }

  async entries(range: KeyRange): Promise<[Buffer, Buffer][]> {
    return (await this.db.iterator(range).all()) as [Buffer, Buffer][];
  }

  /** Up to `limit` entries (and about `maxBytes`) from `range`: a page for a client (index-server.ts). */
  async page(range: KeyRange, limit: number, maxBytes: number, keysOnly: boolean): Promise<{ entries: [Buffer, Buffer][]; more: boolean }> {
    const entries: [Buffer, Buffer][] = [];
    let bytes = 0;
    const it = this.db.iterator({ ...range, limit: limit + 1, values: !keysOnly } as never);
    try {
      for await (const [k, v] of it) {
        if (entries.length >= limit || bytes >= maxBytes) return { entries, more: true };
        entries.push([k, keysOnly ? EMPTY : v]);
        bytes += k.length + (keysOnly ? 0 : v.length);
      }
    } finally {
      await it.close();
    }
    return { entries, more: false };
  }

  async clear(range?: KeyRange): Promise<void> {
    await this.db.clear(range ?? {});
  }

  /**
   * The old folder is renamed away while still open, so no other process can open it in between;
   * then a new, empty database is opened in its place (LOCKED cannot happen: the name is new).
   */
  async reset(): Promise<void> {
    const old = `${this.dir}.damaged-${randomHex(4)}`;
    await fsp.rename(fsPath(this.dir), fsPath(old));
    await this.closeDb().catch(() => {});
    await fsp.rm(fsPath(old), { recursive: true, force: true });
    const fresh = await LocalKV.tryOpen(this.dir);
    if (fresh === LOCKED) throw new SnapError('SNAP_LOCKED', `the repository index at ${displayPath(this.dir)} was opened by another process while it was being reset`);
    this.db = fresh.db;
    this.release = fresh.release;
    this.tablesBefore = fresh.tablesBefore;
  }

  async close(): Promise<void> {
    await this.closeDb();
    // Modes first: a chmod moves a file's ctime, and with it the stamp recorded.
    await ownerOnly(this.dir);
    await recordWrittenTables(this.dir, this.tablesBefore);
    await ownerOnly(this.dir); // the record just written (the tables' modes and owners are settled)
  }

  private async closeDb(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      this.release();
      this.release = () => {};
    }
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * LevelDB reports a full disk, damage or a closed database as plain errors with LEVEL_* codes.
 * They are repository failures: SnapErrors, so a full disk is SNAP_NO_SPACE (not an internal
 * error) and `create` never mistakes one for a problem with a source file.
 */
export function levelError(e: unknown, doing: string): unknown {
  if (e instanceof SnapError || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('LEVEL_')) return e;
  // "Database failed to open" says why only in its cause ("IO error: …/000005.ldb: No space left on device").
  const said = causeMessages(e);
  if (/No space left|ENOSPC|quota/i.test(said)) return new SnapError('SNAP_NO_SPACE', `${doing}: no space left on device`, { cause: e });
  if (/Read-only file system|EROFS/i.test(said)) return new SnapError('SNAP_READ_ONLY', `${doing}: read-only file system`, { cause: e });
  if (/Permission denied|EACCES|EPERM/i.test(said)) return new SnapError('SNAP_PERMISSION', `${doing}: permission denied`, { cause: e });
  if (levelCode(e) === 'LEVEL_CORRUPTION') {
    return new SnapError('SNAP_CORRUPT', `${doing}: the index is damaged (${e.message}); 'snap index rebuild' recreates it`, { cause: e });
  }
  return new SnapError('SNAP_IO', `${doing}: ${e.message}`, { cause: e });
}

/**
 * A read's failure (getSync's and getMany's alike). A synchronous read fails with a plain Error ("IO error: .../000005.ldb: Invalid argument" for a
 * truncated table) where the asynchronous one has a LEVEL_* code: a table that cannot be read is
 * damage (rebuild), unless the system says otherwise.
 */
function syncReadError(e: unknown, dir: string): unknown {
  if (e instanceof SnapError || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('LEVEL_') && levelCode(e) !== 'LEVEL_CORRUPTION') return levelError(e, `reading the repository index at ${displayPath(dir)}`);
  if (/No space left|ENOSPC|quota/i.test(e.message)) return new SnapError('SNAP_NO_SPACE', `reading the repository index: no space left on device`, { cause: e });
  if (/Read-only file system|EROFS/i.test(e.message)) return new SnapError('SNAP_READ_ONLY', `reading the repository index: read-only file system`, { cause: e });
  if (/Permission denied|EACCES|EPERM/i.test(e.message)) return new SnapError('SNAP_PERMISSION', `reading the repository index: permission denied`, { cause: e });
  return new SnapError('SNAP_CORRUPT', `the repository index at ${displayPath(dir)} cannot be read (${e.message}); 'snap index rebuild' recreates it`, { cause: e });
}

/** The messages of an error and of the errors that caused it, one per line. */
function causeMessages(e: Error): string {
  const said: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur instanceof Error && depth < 8; depth++, cur = cur.cause) said.push(cur.message);
  return said.join('\n');
}

export function levelCode(e: unknown): string | undefined {
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
  const top = await fsp.stat(fsPath(dir)).catch(() => undefined);
  for (const name of await fsp.readdir(fsPath(dir)).catch(() => [] as string[])) {
    const p = fsPath(`${dir}/${name}`);
    const st = await fsp.lstat(p).catch(() => undefined);
    if (!st?.isFile()) continue;
    if ((st.mode & 0o077) !== 0) await fsp.chmod(p, st.mode & 0o700).catch(() => {});
    // A file written by another user than the folder's (root, opening a user's repository it
    // trusts): given to the folder's owner, whose next command could not open the index otherwise.
    // Only root can; anyone else's chown fails, and is left to the rebuild at that next open.
    if (top && (st.uid !== top.uid || st.gid !== top.gid)) await fsp.chown(p, top.uid, top.gid).catch(() => {});
  }
}

/**
 * LevelDB takes its location as a string, and a string cannot hold a path that is not UTF-8: such
 * a folder is opened and reached through /proc/self/fd, held open as long as the database is.
 */
export function levelLocation(dir: string): { location: string; release: () => void } {
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
