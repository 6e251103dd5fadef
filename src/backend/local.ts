// A Backend on a local directory. Every put goes to a temporary name in the same folder, is
// fsynced, renamed into place, and the folder is fsynced, so a crash leaves either the old state
// or the complete new blob, never a torn one. Files and folders are owner-only (backups hold secrets).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError } from '../core/errors.js';
import { randomHex } from '../core/ids.js';
import { displayPath, fsPath } from '../core/bytes.js';
import { DirectWriter } from '../core/direct-write.js';
import { makeDirs, writeAllTo, writeDurable } from '../core/durable.js';
import type { Backend, BackendCapabilities, BlobInfo, ThreadReadSpec } from './backend.js';
import { checkRange, shortBlobError, sizeMismatchError } from './checks.js';
import { checkBlobName, checkListPrefix, isBlobName } from './names.js';

export const TEMP_PREFIX = '.tmp-';
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** Pieces of getStream: large enough that a syscall per piece costs nothing, small enough to bound memory. */
const STREAM_PIECE = 1 << 20;
/**
 * The largest blob read whole (get, getInto): a pack is at most the config's packSize (256 MiB at
 * most) plus its last object (128 MiB at most) plus its header (64 MiB at most); anything larger
 * is not a blob snap wrote, and reading it would hold it all in memory.
 */
export const MAX_WHOLE_READ = 512 * 1024 * 1024;
/**
 * Every blob is opened without following a symlink and without blocking (a FIFO would hang the
 * open, and with it a thread of the pool), then checked to be a regular file: a repository is
 * untrusted, and `config` made a FIFO or a symlink to /dev/zero must not hang snap or fill memory.
 */
export const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

export class LocalBackend implements Backend {
  readonly location: string;
  private readonly madeDirs = new Set<string>();
  /**
   * Who what this process makes here is given to: the repository folder's owner, when that is not
   * who made it (root, running a command on a user's repository it trusts, made `data/`, `locks/`
   * and `snapshots/` root's, mode 0700, and the user could no longer lock or read their own
   * repository). Undefined until the first folder or file made here is compared with the folder;
   * null when nothing is to be given away, or when giving it away failed (only root can).
   */
  private owner: { uid: number; gid: number } | null | undefined;

  /** Large blobs (packs) written past the page cache (core/direct-write.ts); undefined: all through it. */
  readonly direct: DirectWriter | undefined;

  /**
   * `directWrites`: write large blobs past the page cache, for a repository's own packs, which
   * nothing reads back soon; not for a spool, whose packs are read right after (repo/spool.ts).
   * A DirectWriter of the caller's (tests: one that reopens files another way).
   */
  constructor(readonly root: string, opts: { directWrites?: boolean | DirectWriter } = {}) {
    this.location = root;
    if (opts.directWrites) this.direct = opts.directWrites === true ? new DirectWriter() : opts.directWrites;
  }

  threadReads(): ThreadReadSpec {
    return { root: this.root };
  }

  private file(name: string): string {
    checkBlobName(name);
    return path.join(this.root, name);
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    const first = await makeDirs(dir, DIR_MODE);
    if (first !== undefined) {
      // Some were made: the folders between the root and `dir` (blob names are at most two deep).
      const made: string[] = [];
      for (let d = dir; d !== this.root && d.startsWith(this.root) && d !== path.dirname(d); d = path.dirname(d)) made.unshift(d);
      for (const d of made) await this.giveAway(d);
    }
    this.madeDirs.add(dir);
  }

  /** Give a folder or file this process made (a path, or the handle of a file being written) to the repository's owner (see `owner`). */
  private async giveAway(made: string | fsp.FileHandle): Promise<void> {
    if (this.owner === null) return;
    if (this.owner === undefined) {
      const [top, st] = await Promise.all([fsp.stat(fsPath(this.root)), typeof made === 'string' ? fsp.stat(fsPath(made)) : made.stat()]);
      if (this.owner !== undefined) return this.giveAway(made); // decided meanwhile
      this.owner = top.uid === st.uid && top.gid === st.gid ? null : { uid: top.uid, gid: top.gid };
      if (this.owner === null) return;
    }
    const { uid, gid } = this.owner;
    try {
      if (typeof made === 'string') await fsp.chown(fsPath(made), uid, gid);
      else await made.chown(uid, gid);
    } catch (e) {
      // Not root: the files stay this user's, as they are whenever two users share a folder.
      if (errnoCode(e) !== 'EPERM') throw e;
      this.owner = null;
    }
  }

  /** Write a blob durably (core/durable.ts) under a `.tmp-` name in its folder; false when 'create' found it there. */
  private async write(name: string, data: Uint8Array | AsyncIterable<Uint8Array>, publish: 'replace' | 'create', size?: number): Promise<boolean> {
    const dest = this.file(name);
    const dir = path.dirname(dest);
    await this.ensureDir(dir);
    const tmp = path.join(dir, `${TEMP_PREFIX}${randomHex(8)}`);
    return writeDurable({ dir: fsPath(dir), tmp: fsPath(tmp), dest: fsPath(dest), mode: FILE_MODE, publish }, async (fh) => {
      await this.giveAway(fh);
      if (data instanceof Uint8Array && this.direct && (await this.direct.write(fh, data))) return;
      let total = 0;
      for await (const piece of data instanceof Uint8Array ? [data] : data) {
        await writeAllTo(fh, piece);
        total += piece.length;
        if (size !== undefined && total > size) break;
      }
      if (size !== undefined && total !== size) throw sizeMismatchError(name, total, size);
    });
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    try {
      await this.write(name, data, 'replace');
    } catch (e) {
      throw fromSystemError(e, `writing ${name} in ${this.root}`);
    }
  }

  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    try {
      await this.write(name, source, 'replace', size);
    } catch (e) {
      throw fromSystemError(e, `writing ${name} in ${this.root}`);
    }
  }

  async putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    try {
      // link(2) fails with EEXIST instead of replacing: an atomic create-if-absent.
      return await this.write(name, data, 'create');
    } catch (e) {
      throw fromSystemError(e, `writing ${name} in ${this.root}`);
    }
  }

  /** Open a blob for reading: a regular file, never through a symlink, never blocking. */
  private async openBlob(name: string): Promise<{ fh: fsp.FileHandle; size: number }> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(fsPath(this.file(name)), READ_FLAGS);
    } catch (e) {
      if (errnoCode(e) === 'ELOOP') throw notRegularError(name, this.root, 'a symbolic link');
      throw e;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw notRegularError(name, this.root, kindOf(st));
      return { fh, size: st.size };
    } catch (e) {
      await fh.close().catch(() => {});
      throw e;
    }
  }

  async get(name: string): Promise<Buffer> {
    let fh: fsp.FileHandle | undefined;
    try {
      const o = await this.openBlob(name);
      fh = o.fh;
      if (o.size > MAX_WHOLE_READ) throw tooLargeError(name, this.root, o.size);
      const buf = Buffer.allocUnsafe(o.size);
      let got = 0;
      while (got < o.size) {
        const { bytesRead } = await fh.read(buf, got, o.size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } catch (e) {
      throw notFoundOr(e, name, this.root);
    } finally {
      await fh?.close();
    }
  }

  async getInto(name: string, scratch: Buffer): Promise<Buffer> {
    let fh: fsp.FileHandle | undefined;
    try {
      const o = await this.openBlob(name);
      fh = o.fh;
      const size = o.size;
      if (size > MAX_WHOLE_READ) throw tooLargeError(name, this.root, size);
      const buf = size <= scratch.length ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const { bytesRead } = await fh.read(buf, got, size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } catch (e) {
      throw notFoundOr(e, name, this.root);
    } finally {
      await fh?.close();
    }
  }

  /**
   * Open read handles of recently read blobs. A restore reads thousands of small objects from
   * each pack; opening and closing the pack for every one was 16% of a restore's CPU time.
   * Blobs are immutable, so a cached handle never reads stale data. A handle leaves the cache
   * when it is the least recently used of MAX_HANDLES, or its blob is deleted, and is closed once
   * the reads using it are done.
   */
  private readonly handles = new Map<string, CachedHandle>();
  private static readonly MAX_HANDLES = 32;

  private acquire(name: string): CachedHandle {
    let h = this.handles.get(name);
    if (h) this.handles.delete(name); // re-inserted below: most recently used last
    else {
      const fh = this.openBlob(name).then((o) => o.fh);
      fh.catch(() => {}); // awaited by the reader; this only keeps an early failure from being "unhandled"
      h = { fh, users: 0, evicted: false };
    }
    this.handles.set(name, h);
    h.users++;
    if (this.handles.size > LocalBackend.MAX_HANDLES) this.evict(this.handles.keys().next().value as string);
    return h;
  }

  private evict(name: string): void {
    const h = this.handles.get(name);
    if (!h) return;
    this.handles.delete(name);
    h.evicted = true;
    if (h.users === 0) closeHandle(h);
  }

  private releaseHandle(h: CachedHandle): void {
    h.users--;
    if (h.evicted && h.users === 0) closeHandle(h);
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    checkRange(name, offset, length);
    const h = this.acquire(name);
    try {
      const fh = await h.fh;
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < length || (length === 0 && offset > 0)) {
        const size = (await fh.stat()).size;
        if (offset + length > size) throw shortBlobError(name, this.root, offset, length, size);
      }
      return buf;
    } catch (e) {
      this.evict(name);
      throw notFoundOr(e, name, this.root);
    } finally {
      this.releaseHandle(h);
    }
  }

  async *getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    if (range) checkRange(name, range.offset, range.length);
    let fh: fsp.FileHandle | undefined;
    try {
      const o = await this.openBlob(name);
      fh = o.fh;
      const size = o.size;
      const start = range?.offset ?? 0;
      const end = range ? start + range.length : size;
      if (end > size || start > size) throw shortBlobError(name, this.root, start, end - start, size);
      for (let pos = start; pos < end; ) {
        const buf = Buffer.allocUnsafe(Math.min(STREAM_PIECE, end - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) throw shortBlobError(name, this.root, start, end - start, pos);
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } catch (e) {
      throw notFoundOr(e, name, this.root);
    } finally {
      await fh?.close();
    }
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    try {
      const st = await fsp.lstat(fsPath(this.file(name)));
      if (!st.isFile()) throw notRegularError(name, this.root, kindOf(st));
      return { name, size: st.size };
    } catch (e) {
      if (e instanceof SnapError) throw e;
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw fromSystemError(e, `reading ${name} in ${this.root}`);
    }
  }

  async exists(name: string): Promise<boolean> {
    return (await this.stat(name)) !== undefined;
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    checkListPrefix(prefix);
    yield* this.walk(prefix.slice(0, -1));
  }

  /** Blobs under the folder `rel` ('' for the root); entries whose names are not blob names (temporary files among them) are not blobs. */
  private async *walk(rel: string): AsyncIterable<BlobInfo> {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(fsPath(rel === '' ? this.root : this.file(rel)), { withFileTypes: true });
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return;
      throw fromSystemError(e, `listing ${rel} in ${this.root}`);
    }
    for (const ent of entries) {
      const name = rel === '' ? ent.name : `${rel}/${ent.name}`;
      if (!isBlobName(name)) continue;
      if (ent.isDirectory()) yield* this.walk(name);
      else if (ent.isFile()) {
        const st = await this.stat(name);
        if (st) yield st;
      }
    }
  }

  async delete(name: string): Promise<void> {
    this.evict(name);
    try {
      await fsp.rm(fsPath(this.file(name)), { force: true });
    } catch (e) {
      throw fromSystemError(e, `deleting ${name} in ${this.root}`);
    }
  }

  /** The file system's space free for this process. */
  async freeSpace(): Promise<number | undefined> {
    const s = await fsp.statfs(fsPath(this.root));
    return s.bavail * s.bsize;
  }

  /** Remove temporary files left by interrupted writes under a folder (`topOnly`: in it alone); returns how many. */
  async removeTempFiles(prefix: string, olderThanMs = 0, topOnly = false): Promise<number> {
    let n = 0;
    const visit = async (dir: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fsp.readdir(fsPath(dir), { withFileTypes: true });
      } catch {
        return;
      }
      for (const ent of entries) {
        const p = path.join(dir, ent.name);
        if (ent.isDirectory()) {
          if (!topOnly) await visit(p);
        } else if (ent.name.startsWith(TEMP_PREFIX)) {
          const st = await fsp.stat(fsPath(p)).catch(() => undefined);
          if (st && Date.now() - st.mtimeMs >= olderThanMs) {
            await fsp.rm(fsPath(p), { force: true });
            n++;
          }
        }
      }
    };
    await visit(prefix === '' ? this.root : this.file(prefix.replace(/\/$/, '')));
    return n;
  }

  async capabilities(): Promise<BackendCapabilities> {
    return { atomicPutIfAbsent: true }; // link(2) refuses an existing name atomically
  }

  async close(): Promise<void> {
    for (const name of [...this.handles.keys()]) this.evict(name);
  }
}

interface CachedHandle {
  fh: Promise<fsp.FileHandle>;
  users: number;
  evicted: boolean;
}

function closeHandle(h: CachedHandle): void {
  h.fh.then((fh) => fh.close()).catch(() => {});
}

export function kindOf(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** A blob that is a FIFO, a symlink, a device...: damage (or a trap), never read. */
export function notRegularError(name: string, root: string, kind: string): SnapError {
  return new SnapError('SNAP_CORRUPT', `${name} in the repository at ${displayPath(root)} is ${kind}, not a regular file: the repository is damaged or crafted`);
}

export function tooLargeError(name: string, root: string, size: number): SnapError {
  return new SnapError('SNAP_CORRUPT', `${name} in the repository at ${displayPath(root)} has ${size} bytes, more than any file snap writes (${MAX_WHOLE_READ}): the repository is damaged or crafted`);
}

export function notFoundOr(e: unknown, name: string, root: string): SnapError {
  if (e instanceof SnapError) return e;
  if (errnoCode(e) === 'ENOENT') {
    return new SnapError('SNAP_MISSING_OBJECT', `${name} is missing from the repository at ${root}`, { cause: e });
  }
  return fromSystemError(e, `reading ${name} in ${root}`);
}
