// `snap restore`: recreate a snapshot (or parts of it) under a target directory.
// Safety: names in trees are validated on decode (no '/', '.', '..'); every directory on the way is
// lstat'ed and a symlink or other non-directory is refused, so nothing is written outside the
// target. Every file is written to a temporary name and renamed, so an interrupted restore never
// leaves a complete-looking file. Directory metadata is applied after their children.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError, isSnapError } from '../core/errors.js';
import { displayName, displayPath, fsDecode, fsEncode, isAllZero, joinPath } from '../core/bytes.js';
import { TaskPool } from '../core/pool.js';
import type { ProgressSink } from '../core/progress.js';
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { Repository } from '../repo/repository.js';
import type { Backend } from '../backend/backend.js';
import { locate, splitPath } from './navigate.js';
import { randomHex, toHex } from '../core/ids.js';
import { CODEC_RAW } from '../store/codec.js';
import { readObjectAt } from '../store/object-store.js';
import { packName } from '../store/pack.js';
import { FileWriter, type WriteJob, writerUnpacks } from './restore-writer.js';
import { makeDevice, makeFifo } from './special-files.js';
import { xattrBinding, xattrUnavailable } from './xattr-binding.js';
import { applyXattrs } from './xattr-apply.js';

export type OverwritePolicy = 'never' | 'if-changed' | 'always';

export interface RestoreOptions {
  target: string;
  include?: string[];
  dryRun?: boolean;
  /** With dryRun: told of each entry that would be written, in restore order. */
  onPlanned?: (e: PlannedEntry) => Promise<void> | void;
  overwrite?: OverwritePolicy;
  /** Restore ownership (only root can). */
  asRoot: boolean;
  sink: ProgressSink;
  concurrency?: number;
  /** Stops the restore (Ctrl-C): the walk stops at its next entry and the reason is thrown. */
  signal?: AbortSignal;
}

/** An entry a dry run would write: `dest` under the target; for a hard link, the path it would link to. */
export interface PlannedEntry {
  dest: Buffer;
  node: Node;
  linkTo?: Buffer;
}

export interface RestoreResult {
  files: number;
  dirs: number;
  links: number;
  special: number;
  bytes: number;
  unchanged: number;
  skipped: number;
  damaged: string[];
  warnings: number;
}

const TMP_PREFIX = '.snap-restore-';
/** Writer threads: 2 keep a 2-core machine busy (each costs ~10 MB of memory). */
const WRITER_THREADS = 2;
/** Bytes of small files read ahead of the writer threads. */
const INFLIGHT_BYTES = 32 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export async function restoreSnapshot(repo: Repository, snap: StoredSnapshot, o: RestoreOptions): Promise<RestoreResult> {
  // The paths `ls` and `cat` accept: absolute snapshot paths, or paths relative to a source path.
  const include: string[] = [];
  for (const inc of o.include ?? []) include.push(fsDecode((await locate(repo, snap, inc)).path));
  const r = new Restorer(repo, { ...o, include });
  await r.run(snap);
  return r.result;
}

class Restorer {
  readonly result: RestoreResult = { files: 0, dirs: 0, links: 0, special: 0, bytes: 0, unchanged: 0, skipped: 0, damaged: [], warnings: 0 };
  private readonly pool: TaskPool;
  private readonly includes: Buffer[][];
  private readonly hardlinks = new Map<string, Promise<Buffer | undefined>>();
  private readonly dirMeta: [Buffer, Node][] = [];
  private readonly policy: OverwritePolicy;
  private targetRoot = '';
  private progress = { files: 0, dirs: 0, bytes: 0, current: '' };
  private readonly freshDirs = new Set<string>();
  private readonly tmpPrefix = randomHex(4);
  private tmpCounter = 0;
  private writer: FileWriter | undefined;
  private readonly reader: RangeReader;
  /** Bytes of single-chunk files read and not yet written (see withBudget). */
  private inflight = 0;
  private budgetWaiters: (() => void)[] = [];
  private readonly xattr = xattrBinding();
  private xattrMissingSaid = false;

  constructor(private readonly repo: Repository, private readonly o: RestoreOptions) {
    // Files are written on worker threads (restore-writer.ts): many files in flight keep them
    // busy while the main thread reads and verifies the next ones; memory is bounded by bytes.
    this.pool = new TaskPool(o.concurrency ?? 64, 64);
    this.reader = new RangeReader(repo.backend);
    this.includes = (o.include ?? []).map((p) => splitPath(fsEncode(p)));
    this.policy = o.overwrite ?? 'never';
  }

  /** A file whose data is damaged or missing is named and skipped; any other error propagates. */
  private damagedData(e: unknown, dest: Buffer): undefined {
    if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
    this.result.damaged.push(displayName(dest));
    this.result.files--;
    this.warn(e.code, dest, `not restored, its data is damaged: ${e.message}`);
    return undefined;
  }

  private warn(code: string, p: Buffer, message: string): void {
    this.result.warnings++;
    const shown = displayName(p);
    this.o.sink.warn?.({ code, path: shown, message: `${shown}: ${message}` });
  }

  /** 'all': restore everything below; 'partial': on the way to an include; 'none': skip. */
  private scope(parts: Buffer[]): 'all' | 'partial' | 'none' {
    if (this.includes.length === 0) return 'all';
    let partial = false;
    for (const inc of this.includes) {
      const n = Math.min(inc.length, parts.length);
      let same = true;
      for (let i = 0; i < n && same; i++) same = inc[i]!.equals(parts[i]!);
      if (!same) continue;
      if (parts.length >= inc.length) return 'all';
      partial = true;
    }
    return partial ? 'partial' : 'none';
  }

  async run(snap: StoredSnapshot): Promise<void> {
    const target = path.resolve(this.o.target);
    if (!this.o.dryRun) {
      try {
        await fsp.mkdir(target, { recursive: true, mode: 0o700 });
        this.targetRoot = await fsp.realpath(target);
      } catch (e) {
        throw fromSystemError(e, `restore target ${target}`);
      }
    }
    const rootScope = this.scope([]);
    if (!this.o.dryRun) this.writer = new FileWriter(WRITER_THREADS);
    try {
      if (rootScope !== 'none') await this.tree(snap.tree, Buffer.from(this.targetRoot || target), [], rootScope);
      await this.pool.drain();
    } finally {
      // On failure, drain the pool first: no task may still be waiting for a writer thread.
      await this.pool.drain().catch(() => {});
      await this.writer?.close();
      this.writer = undefined;
    }
    if (!this.o.dryRun) {
      for (const [dir, node] of this.dirMeta) await this.applyMeta(dir, node, false);
    }
  }

  private async tree(id: Buffer, dest: Buffer, parts: Buffer[], scope: 'all' | 'partial'): Promise<void> {
    let nodes: Node[];
    try {
      nodes = await this.repo.readTree(id);
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
      this.result.damaged.push(displayName(dest));
      this.warn(e.code, dest, `directory contents cannot be restored: ${e.message}`);
      return;
    }
    for (const node of nodes) {
      this.o.signal?.throwIfAborted();
      const childParts = [...parts, node.name];
      const s = scope === 'all' ? 'all' : this.scope(childParts);
      if (s === 'none') continue;
      const childDest = joinPath(dest, node.name);
      if (node.type === 'dir') {
        if (!(await this.dir(childDest, node))) continue;
        await this.tree(node.tree!, childDest, childParts, s);
        this.dirMeta.push([childDest, node]);
      } else if (s === 'all') {
        await this.pool.run(() => this.entry(node, childDest, dest));
      }
    }
  }

  /** A dry run's entry, told to onPlanned; true, for the callers' returns. */
  private async planned(dest: Buffer, node: Node, linkTo?: Buffer): Promise<true> {
    await this.o.onPlanned?.({ dest, node, linkTo });
    return true;
  }

  /** Make sure a directory exists at `p` and is a real directory (never a symlink). */
  private async dir(p: Buffer, node: Node): Promise<boolean> {
    this.result.dirs++;
    this.progress.dirs++;
    if (this.o.dryRun) return this.planned(p, node);
    const st = await fsp.lstat(p).catch((e) => {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw fromSystemError(e, `restoring ${displayName(p)}`);
    });
    if (st?.isDirectory()) return true;
    if (st) {
      this.result.skipped++;
      this.warn('SNAP_UNSAFE_PATH', p, `exists and is not a directory (${st.isSymbolicLink() ? 'a symlink, not followed' : 'a file'}); its contents are not restored`);
      return false;
    }
    try {
      await fsp.mkdir(p, { mode: 0o700 });
    } catch (e) {
      throw fromSystemError(e, `creating ${displayName(p)}`);
    }
    this.freshDirs.add(p.toString('latin1'));
    return true;
  }

  private async entry(node: Node, dest: Buffer, dir: Buffer): Promise<void> {
    try {
      // Files and symlinks get their extended attributes once they are in place (a file from a
      // writer thread too); directories and special files in applyMeta.
      if (node.type === 'file') {
        if (await this.file(node, dest, dir)) this.restoreXattrs(node, dest);
      } else if (node.type === 'symlink') {
        if (await this.symlink(node, dest, dir)) this.restoreXattrs(node, dest);
      }
      else if (node.type === 'socket') this.result.special++; // a socket cannot be recreated; its listener is gone
      else await this.special(node, dest);
    } catch (e) {
      // A dry run writes nothing, so nothing in it fails for one entry: an error there is the
      // listing's (onPlanned: a closed standard output) and ends it, as a stopped restore does.
      if (this.o.dryRun || this.o.signal?.aborted) throw e;
      const se = fromSystemError(e, `restoring ${displayName(dest)}`);
      if (se.code === 'SNAP_NO_SPACE' || se.code === 'SNAP_INTERNAL') throw se;
      this.result.skipped++;
      this.warn(se.code, dest, se.message);
    }
  }

  /** Decide what to do with an existing entry at `dest`; true means write. */
  private async mayWrite(node: Node, dest: Buffer, dir?: Buffer): Promise<boolean> {
    // A directory this restore created holds only what the restore put there (names in a tree
    // are unique): no need to look for an existing entry. Saves an lstat per file.
    if (dir && this.freshDirs.has(dir.toString('latin1'))) return true;
    const st = await fsp.lstat(dest).catch(() => undefined);
    if (!st) return true;
    if (st.isDirectory()) {
      this.result.skipped++;
      this.warn('SNAP_EXISTS', dest, 'a directory is in the way; not replaced');
      return false;
    }
    const same = (node.type === 'file' && st.isFile() && st.size === node.size && sameMtime(st, node)) || (await sameSpecial(node, st, dest));
    if (same && this.policy !== 'always') {
      this.result.unchanged++;
      return false;
    }
    if (this.policy === 'never') {
      this.result.skipped++;
      this.warn('SNAP_EXISTS', dest, "exists and differs; not overwritten (use --overwrite if-changed or always)");
      return false;
    }
    return true;
  }

  /** Unique within this process; O_EXCL (or link/symlink's EEXIST) guards against leftovers of others. */
  private tmpName(dir: Buffer): Buffer {
    return joinPath(dir, Buffer.from(`${TMP_PREFIX}${this.tmpPrefix}-${this.tmpCounter++}`));
  }

  /** Returns the path written (undefined when nothing was written, or a hard link to an earlier path). */
  private async file(node: Node, dest: Buffer, dir: Buffer): Promise<Buffer | undefined> {
    if (node.inode) {
      const key = `${node.inode.dev}:${node.inode.ino}`;
      const first = this.hardlinks.get(key);
      if (first) {
        const firstPath = await first;
        if (firstPath && (await this.link(node, firstPath, dest, dir))) return undefined;
      }
    }
    let register: ((p: Buffer | undefined) => void) | undefined;
    if (node.inode) {
      const key = `${node.inode.dev}:${node.inode.ino}`;
      if (!this.hardlinks.has(key)) this.hardlinks.set(key, new Promise((r) => (register = r)));
    }
    let written: Buffer | undefined;
    try {
      written = await this.writeFile(node, dest, dir);
    } finally {
      register?.(written);
    }
    return written;
  }

  private async link(node: Node, firstPath: Buffer, dest: Buffer, dir: Buffer): Promise<boolean> {
    if (!(await this.mayWrite(node, dest, dir))) return true;
    this.result.links++;
    if (this.o.dryRun) return this.planned(dest, node, firstPath);
    const tmp = this.tmpName(dir);
    await fsp.link(firstPath, tmp);
    await fsp.rename(tmp, dest);
    return true;
  }

  private async writeFile(node: Node, dest: Buffer, dir: Buffer): Promise<Buffer | undefined> {
    if (!(await this.mayWrite(node, dest, dir))) return undefined;
    this.result.files++;
    this.result.bytes += node.size;
    this.progress.files++;
    if (this.o.dryRun) return (await this.planned(dest, node)) && dest;
    const tmp = this.tmpName(dir);
    const chunks = node.chunks ?? [];
    if (chunks.length <= 1 && this.writer) return this.withBudget(node.size, () => this.writeSmall(node, chunks[0], tmp, dest));
    // A larger file holds one chunk at a time: it counts as a chunk of the largest size against
    // the budget, so however many large files the pool starts, few are read at once.
    return this.withBudget(Math.min(node.size, this.repo.config.chunker.maxSize), () => this.writeChunks(node, tmp, dest));
  }

  /** A file of several chunks, read, verified and written here, one chunk after the other. */
  private async writeChunks(node: Node, tmp: Buffer, dest: Buffer): Promise<Buffer | undefined> {
    const fh = await fsp.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    let ok = false;
    try {
      let pos = 0;
      let end = 0;
      for (const id of node.chunks ?? []) {
        let data: Buffer;
        try {
          data = await this.repo.objects.get(id, 'blob');
        } catch (e) {
          return this.damagedData(e, dest);
        }
        end = Math.max(end, await writeSparse(fh, data, pos));
        pos += data.length;
        this.progress.bytes += data.length;
      }
      if (pos !== node.size) {
        this.result.damaged.push(displayName(dest));
        this.warn('SNAP_CORRUPT', dest, `chunks hold ${pos} bytes but the file has ${node.size}; not restored`);
        return undefined;
      }
      if (end < node.size) await fh.truncate(node.size); // trailing zeros were skipped: set the size
      if (this.o.asRoot) await fh.chown(node.uid, node.gid);
      await fh.chmod(node.mode);
      await fh.utimes(toTime(node), toTime(node));
      ok = true;
    } finally {
      await fh.close();
      if (!ok) await fsp.rm(tmp, { force: true });
    }
    await fsp.rename(tmp, dest);
    this.progress.current = displayName(dest);
    this.o.sink.progress?.(this.progress);
    return dest;
  }

  /** Run `fn` once `bytes` fit in the budget (a file larger than the budget runs alone). */
  private async withBudget<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    while (this.inflight > 0 && this.inflight + bytes > INFLIGHT_BYTES) await new Promise<void>((r) => this.budgetWaiters.push(r));
    this.inflight += bytes;
    try {
      return await fn();
    } finally {
      this.inflight -= bytes;
      for (const w of this.budgetWaiters.splice(0)) w();
    }
  }

  /**
   * A file of at most one chunk: its stored object is read here and handed to a writer thread,
   * which decompresses and verifies it (the checks of ObjectStore.get) before writing the file.
   */
  private async writeSmall(node: Node, chunk: Buffer | undefined, tmp: Buffer, dest: Buffer): Promise<Buffer | undefined> {
    let job: Omit<WriteJob, 'tmp' | 'dest' | 'size' | 'mode' | 'owner' | 'time'> = { data: EMPTY, codec: CODEC_RAW, rawLength: 0, what: 'an empty file' };
    try {
      if (chunk) job = await this.readStored(chunk);
      if (job.rawLength !== node.size) {
        this.result.damaged.push(displayName(dest));
        this.warn('SNAP_CORRUPT', dest, `chunks hold ${job.rawLength} bytes but the file has ${node.size}; not restored`);
        return undefined;
      }
      await this.writer!.write({
        ...job, tmp, dest, size: node.size, mode: node.mode, time: toTime(node),
        owner: this.o.asRoot ? { uid: node.uid, gid: node.gid } : undefined,
      });
    } catch (e) {
      return this.damagedData(e, dest);
    }
    this.progress.bytes += node.size;
    this.progress.current = displayName(dest);
    this.o.sink.progress?.(this.progress);
    return dest;
  }

  /** A blob as stored (ObjectStore.get without unpacking; objects of other codecs are unpacked here). */
  private async readStored(id: Buffer): Promise<Pick<WriteJob, 'data' | 'codec' | 'rawLength' | 'id' | 'what'>> {
    const hex = toHex(id);
    const loc = await this.repo.index.lookup(id);
    if (!loc) throw new SnapError('SNAP_MISSING_OBJECT', `object ${hex.slice(0, 16)} is not in the repository index`);
    if (loc.type !== 'blob') throw new SnapError('SNAP_CORRUPT', `object ${hex.slice(0, 16)} is a ${loc.type}, expected a blob`);
    const what = `object ${hex.slice(0, 16)} (in pack ${loc.pack.slice(0, 12)})`;
    if (!writerUnpacks(loc.codec)) {
      const raw = await readObjectAt(this.repo.backend, id, loc);
      return { data: raw, codec: CODEC_RAW, rawLength: raw.length, what };
    }
    const data = await this.reader.read(loc.pack, loc.offset, loc.length);
    return { data, codec: loc.codec, rawLength: loc.rawLength, id, what };
  }

  private async symlink(node: Node, dest: Buffer, dir: Buffer): Promise<boolean> {
    if (!(await this.mayWrite(node, dest, dir))) return false;
    this.result.special++;
    if (this.o.dryRun) {
      await this.planned(dest, node);
      return false;
    }
    const tmp = this.tmpName(dir);
    await fsp.symlink(node.target!, tmp);
    if (this.o.asRoot) await fsp.lchown(tmp, node.uid, node.gid);
    await fsp.lutimes(tmp, toTime(node), toTime(node));
    await fsp.rename(tmp, dest);
    return true;
  }

  private async special(node: Node, dest: Buffer): Promise<void> {
    if ((node.type === 'chardev' || node.type === 'blockdev') && !this.o.asRoot) {
      this.result.skipped++;
      this.warn('SNAP_PERMISSION', dest, `is a device node; only root can create it (skipped)`);
      return;
    }
    if (!(await this.mayWrite(node, dest))) return;
    this.result.special++;
    if (this.o.dryRun) {
      await this.planned(dest, node);
      return;
    }
    // An ASCII temporary name in the target root: the helper programs take string arguments.
    const tmp = path.join(this.targetRoot, TMP_PREFIX + randomHex(8));
    if (node.type === 'fifo') makeFifo(tmp);
    else makeDevice(tmp, node.type as 'chardev' | 'blockdev', node.rdev ?? 0);
    try {
      await this.applyMeta(Buffer.from(tmp), node, false);
      await fsp.rename(tmp, dest);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  }

  private async applyMeta(p: Buffer, node: Node, isLink: boolean): Promise<void> {
    try {
      if (this.o.asRoot) await (isLink ? fsp.lchown : fsp.chown)(p, node.uid, node.gid);
      // After chown (which clears security.capability), before chmod (a user who is not root
      // cannot set user.* attributes on an entry without write permission).
      this.restoreXattrs(node, p);
      if (!isLink) await fsp.chmod(p, node.mode);
      await (isLink ? fsp.lutimes : fsp.utimes)(p, toTime(node), toTime(node));
    } catch (e) {
      this.warn(errnoCode(e) ?? 'SNAP_IO', p, `metadata not restored: ${(e as Error).message}`);
    }
  }

  /**
   * The one place restore sets extended attributes (POSIX ACLs among them): on `p`, the entry as
   * it now stands (xattr-apply.ts). A file already in place with a mode that denies its owner
   * writing gets write permission for the moment of setting, as a user who is not root needs
   * it for user.* attributes (root does not).
   */
  private restoreXattrs(node: Node, p: Buffer): void {
    if (!node.xattrs || node.xattrs.length === 0 || this.o.dryRun) return;
    if (!this.xattr) {
      if (!this.xattrMissingSaid) this.warn('SNAP_XATTR', p, `extended attributes and ACLs are not restored (here nor for other files): ${xattrUnavailable()}`);
      this.xattrMissingSaid = true;
      return;
    }
    const lend = !this.o.asRoot && node.type === 'file' && (node.mode & 0o200) === 0;
    try {
      if (lend) fs.chmodSync(p, node.mode | 0o200);
      for (const prob of applyXattrs(this.xattr, p, node.xattrs)) this.warn(prob.code, p, prob.message);
    } finally {
      if (lend) fs.chmodSync(p, node.mode);
    }
  }
}

interface RangeRequest {
  offset: number;
  length: number;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

/**
 * Reads of stored objects, merged: the requests made while the main thread works through its
 * queue are grouped by pack and sorted, and requests for neighbouring byte ranges are served by
 * one getRange. A backup stores a directory's small files one after the other, so a restore,
 * which visits them in the same order, asks for runs of adjacent objects; one read per object
 * was a thread-pool round trip each (48k preads and ~300k futex calls for the bench corpus).
 */
class RangeReader {
  private readonly waiting = new Map<string, RangeRequest[]>();
  private scheduled = false;

  constructor(private readonly backend: Backend) {}

  read(pack: string, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let list = this.waiting.get(pack);
      if (!list) this.waiting.set(pack, (list = []));
      list.push({ offset, length, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = [...this.waiting];
    this.waiting.clear();
    for (const [pack, reqs] of all) {
      reqs.sort((a, b) => a.offset - b.offset);
      let group: RangeRequest[] = [];
      let start = 0;
      let end = 0;
      for (const r of reqs) {
        if (group.length > 0 && (r.offset > end + MERGE_GAP || Math.max(end, r.offset + r.length) - start > MERGE_MAX)) {
          void this.readGroup(pack, start, end, group);
          group = [];
        }
        if (group.length === 0) {
          start = r.offset;
          end = r.offset;
        }
        group.push(r);
        end = Math.max(end, r.offset + r.length);
      }
      if (group.length > 0) void this.readGroup(pack, start, end, group);
    }
  }

  private async readGroup(pack: string, start: number, end: number, group: RangeRequest[]): Promise<void> {
    try {
      const buf = await this.backend.getRange(packName(pack), start, end - start);
      if (buf.length < end - start) {
        throw new SnapError('SNAP_CORRUPT', `pack ${pack.slice(0, 12)} is shorter than expected (wanted ${end - start} bytes at ${start}, got ${buf.length})`);
      }
      for (const r of group) r.resolve(buf.subarray(r.offset - start, r.offset - start + r.length));
    } catch (e) {
      for (const r of group) r.reject(e);
    }
  }
}

/** Requests this far apart (bytes of other objects between them) are still read as one. */
const MERGE_GAP = 64 * 1024;
/** The largest merged read. */
const MERGE_MAX = 4 * 1024 * 1024;

/**
 * Write a chunk, skipping 64 KiB blocks of zeros: sparse files stay sparse (the final truncate
 * sets the size). Non-zero blocks next to each other are written in one call.
 */
async function writeSparse(fh: fsp.FileHandle, data: Buffer, pos: number): Promise<number> {
  const BLOCK = 64 * 1024;
  let runStart = -1;
  let end = 0;
  for (let off = 0; off < data.length; off += BLOCK) {
    const zero = isAllZero(data.subarray(off, off + BLOCK));
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      await writeAll(fh, data.subarray(runStart, off), pos + runStart);
      end = pos + off;
      runStart = -1;
    }
  }
  if (runStart >= 0) {
    await writeAll(fh, data.subarray(runStart), pos + runStart);
    end = pos + data.length;
  }
  return end; // the file offset just past the last byte written (0 if none)
}

async function writeAll(fh: fsp.FileHandle, data: Buffer, pos: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, pos + off);
    off += bytesWritten;
  }
}

/**
 * Seconds as a double: libuv's utimes takes a double and truncates it to whole microseconds, and
 * `sec + nsec / 1e9` can land a hair below the intended microsecond (…093 µs became …092). Aiming
 * at the middle of the microsecond makes the truncation land on it: restored mtimes equal the
 * recorded ones to the microsecond, always.
 */
function toTime(n: Node): number {
  return n.mtime.sec + (Math.floor(n.mtime.nsec / 1000) + 0.5) / 1e6;
}

/** An existing symlink, FIFO or device that already is what the snapshot holds (a restore run twice). */
async function sameSpecial(n: Node, st: fs.Stats, dest: Buffer): Promise<boolean> {
  if (n.type === 'symlink' && st.isSymbolicLink()) {
    const target = await fsp.readlink(dest, { encoding: 'buffer' }).catch(() => undefined);
    return target !== undefined && n.target !== undefined && target.equals(n.target);
  }
  if (n.type === 'fifo') return st.isFIFO();
  if (n.type === 'chardev') return st.isCharacterDevice() && st.rdev === (n.rdev ?? 0);
  if (n.type === 'blockdev') return st.isBlockDevice() && st.rdev === (n.rdev ?? 0);
  return false;
}

/**
 * libuv sets times from a double and truncates them to whole microseconds, so a file this restore
 * wrote can be up to ~1.3 µs older than its snapshot mtime: compare within 2 µs, or a restore run
 * again after a crash calls its own files "different".
 */
function sameMtime(st: fs.Stats, n: Node): boolean {
  return Math.abs(st.mtimeMs - (n.mtime.sec * 1000 + n.mtime.nsec / 1e6)) < 0.002;
}
