// `snap create`: walk the sources, store new chunks and trees, write a snapshot record.
// One file is read, chunked and hashed at a time on the main thread with synchronous reads (the
// fastest way to read from Node here); compression and pack writes run concurrently on the thread
// pool, bounded by the object store. Unchanged files are recognised from the files cache without
// being read. Per-file problems are warnings: the snapshot is still written.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError, systemDetail } from '../../core/errors.js';
import { displayName, displayPath, fsEncode, fsPath, joinPath, packedViews } from '../../core/bytes.js';
import { createHash } from 'node:crypto';
import type { HostInfo } from '../../core/host.js';
import type { ProgressCounters, ProgressSink } from '../../core/progress.js';
import { unmatched } from '../../model/exclude.js';
import { LeaveOut, type LeaveOutOptions, relBelow } from './leave-out.js';
import type { WalkAhead } from './walk-ahead.js';
import { type Node, recordedInode } from '../../model/node.js';
import { snapshotTime, TIME_RANGE, type SnapshotSummary, type StoredSnapshot } from '../../model/snapshot.js';
import { encodeTree } from '../../model/tree.js';
import { FileChunker } from '../../store/file-chunker.js';
import { readFully } from '../../core/read-fully.js';
import { ID_BYTES, IdSlab } from '../../core/ids.js';
import { type CachedFile, type DirRecord, type FileStamp, packCachedFiles, type Repository, sameStamp } from '../../repo/repository.js';
import { baseNode, type EntryStat, LeanStat, splitNs } from '../fs/node-meta.js';
import { streamChunks } from '../../store/stream-chunker.js';
import { OwnerNames } from '../fs/owners.js';
import { buildTrie, normalizeSources, type SourceTrie } from '../fs/sources.js';
import { type XattrBinding, xattrBinding, xattrUnavailable } from '../fs/xattr-binding.js';
import { readXattrs } from '../fs/xattr-read.js';
import { locateAbs } from '../tree/navigate.js';

/** A backup of one stream (stdin, a command's output) as a single file at `/<name>`. */
export interface StdinSource {
  name: string;
  data: AsyncIterable<Uint8Array>;
  /** Called once the data has ended, before the snapshot is saved: throws when the producer failed. */
  finished?: () => Promise<void>;
}

export interface CreateOptions extends LeaveOutOptions {
  paths: string[];
  /** Back up this stream instead of `paths`. */
  stdin?: StdinSource;
  cwd: string;
  tags?: string[];
  time?: Date;
  oneFileSystem?: boolean;
  /**
   * The sources walked ahead while the repository was opened (walk-ahead.ts), with the same
   * paths, cwd, exclude options and oneFileSystem: the walk takes the directories it listed, and
   * the backup counts as started when it did.
   */
  ahead?: WalkAhead;
  host: HostInfo;
  program: string;
  sink: ProgressSink;
  /**
   * Stops the backup (Ctrl-C): the walk stops at the next entry, pack writes already started
   * finish, no snapshot record is written, and the reason is thrown. Packs written so far are
   * unreferenced: the next backup reuses their objects, gc removes them.
   */
  signal?: AbortSignal;
  /**
   * Save no snapshot when the sources hold exactly what the previous snapshot of the same paths
   * holds (`snap watch`: a rescan that found nothing new); the previous one is returned, `unchanged`.
   */
  skipUnchanged?: boolean;
  /**
   * `snap watch`: the walk of the previous snapshot (see CreateResult.walk) and the paths the
   * watcher reported since it. A directory with no report at or below it is taken from that walk
   * (its tree, file count and bytes) without reading it; the sources' roots, every folder above a
   * reported path, and every reported folder (all of it: a fresh `mkdir -p` tree gives events for
   * its top only) are read as usual. Used only when `walk` belongs to the snapshot this backup
   * follows (its parent); otherwise everything is read (CreateResult.trusted is false).
   */
  trust?: { walk: WalkMemo; dirty: Iterable<string> };
  /** Return this backup's walk (CreateResult.walk), for a following backup's `trust`. */
  remember?: boolean;
  /** Called after the walk, before anything is compared or saved (`snap watch`'s test hook holds a backup there). */
  beforeSave?: () => Promise<void>;
  /** Files-cache entries written in batches of this many (default CACHE_BATCH; tests make it small). */
  cacheBatch?: number;
}

/**
 * What a backup learned about each directory it saved: its tree and what that tree holds below
 * it, kept in memory by `snap watch` between backups (a cache: never stored, rebuilt by any full
 * scan). A directory whose subtree gave a warning has no tree here: it is read again.
 */
export interface WalkMemo {
  /** The snapshot this walk made (or found unchanged). */
  snapshot: string;
  root: MemoDir;
}

export interface MemoDir {
  /** Undefined where the folder must be read again: on the way to a source, or a problem below it. */
  tree?: Buffer;
  files: number;
  bytes: number;
  /** Directories in the subtree, this one included. */
  dirs: number;
  kids: Map<string, MemoDir>;
}

/** The reported paths as a tree of names: `deep` where everything below must be read. */
interface DirtyDir {
  deep: boolean;
  kids: Map<string, DirtyDir>;
}

/** Where the walk is in the previous walk and in the reported paths (undefined: read everything). */
interface TrustAt {
  memo: MemoDir | undefined;
  dirty: DirtyDir | undefined;
}

/** Counters of the file system calls one backup made (`snap --json watch` shows them). */
export interface WalkStats {
  lstat: number;
  readdir: number;
  /** Directories taken from the previous walk without reading them. */
  trustedDirs: number;
  /** Changed large files cut and hashed by the compression threads (chunkedOnThread). */
  cutOnThreads: number;
  /** New large files read in the lane, beside the walk (Archiver.lane). */
  inLane: number;
}

export interface CreateResult {
  snapshot: StoredSnapshot;
  warnings: number;
  /** With skipUnchanged: nothing changed, `snapshot` is the previous one and nothing was saved. */
  unchanged?: boolean;
  /** With `trust`: whether the previous walk was used (false: everything was read). */
  trusted: boolean;
  /** With `remember`. */
  walk?: WalkMemo;
  stats: WalkStats;
}

/** Build the tree of reported paths; a name that is not UTF-8 (the watcher's U+FFFD) makes its folder deep. */
function dirtyTree(paths: Iterable<string>): DirtyDir {
  const root: DirtyDir = { deep: false, kids: new Map() };
  for (const p of paths) {
    let at = root;
    for (const part of fsEncode(path.posix.resolve('/', p)).toString('latin1').split('/')) {
      if (part === '') continue;
      if (at.deep) break;
      if (part.includes('\xef\xbf\xbd')) {
        at.deep = true; // the real name is unknown: read everything in this folder
        break;
      }
      let k = at.kids.get(part);
      if (!k) at.kids.set(part, (k = { deep: false, kids: new Map() }));
      at = k;
    }
    at.deep = true;
  }
  return root;
}

/** Files-cache updates wait until the chunks they name are durable; flush them in batches. */
const CACHE_BATCH = 20_000;
/** Batches waiting beside the walk for their data to be durable, at most (flushCache). */
const CACHE_WAITING = 2;

/** The files cache of the directory being walked: what it held, and what this backup learned. */
interface DirCache {
  old: Map<string, CachedFile>;
  updates: Map<string, CachedFile>;
}

interface PendingDir {
  dir: Buffer;
  /** The directory's new entries, packed (packCachedFiles): they wait in memory until durable. */
  files: Buffer;
  stale: Buffer[];
  /** The folder's record; null: removed; undefined (files named as sources: not all of it was read): as it is. */
  record?: DirRecord | null;
}

/** A directory entry seen by lstat; a file is read (or found in the files cache) only afterwards. */
interface Kid {
  node: Node;
  st: EntryStat;
  /** A directory whose tree is still being made (Later): its node's `tree` is set when this settles. */
  pending?: Promise<void>;
}

/**
 * A directory's tree still being made: some of its files are being cut by compression threads
 * (chunkedOnThread). The walk goes on with the directory's next siblings meanwhile; the parent
 * waits for it before it compares or makes its own tree.
 */
interface Later {
  later: Promise<Buffer>;
}

/**
 * Bumped when what the directory digest covers changes: old records then simply never match.
 * 2: trees hold extended attributes (a tree of version 1's time lacks them). Whether this backup
 * reads attributes at all is mixed in too (XATTR_FLAG), so a tree made without them is never
 * reused by a backup that can read them.
 */
const DIGEST_VERSION = 2;
const XATTR_FLAG = 0x10000;

export async function createSnapshot(repo: Repository, o: CreateOptions): Promise<CreateResult> {
  // The walk ahead ends here: this walk takes what it listed, and the backup started when it did
  // (unless it is too old to use: WalkAhead.claim).
  const ahead = o.ahead?.claim() ? o.ahead : undefined;
  const started = ahead?.startedAt ?? Date.now();
  if (o.paths.length === 0 && !o.stdin) throw new SnapError('SNAP_USAGE', 'name at least one path to back up');
  if (o.stdin && (o.stdin.name === '' || o.stdin.name.includes('/') || o.stdin.name === '.' || o.stdin.name === '..' || o.stdin.name.includes('\0'))) {
    throw new SnapError('SNAP_USAGE', `--stdin-filename must be a plain file name (not '${displayPath(o.stdin.name)}')`);
  }
  if (o.time && snapshotTime(o.time) === undefined) throw new SnapError('SNAP_USAGE', `cannot record the snapshot time ${String(o.time)}: the format holds ${TIME_RANGE}`);
  const { sources, dropped } = o.stdin ? { sources: [`/${o.stdin.name}`], dropped: [] } : normalizeSources(o.paths, o.cwd);
  for (const d of dropped) o.sink.info?.(`${displayPath(d)} is inside another source path; it is backed up once`);
  // The folders whose files-cache entries the sources use: a folder's own, a file's parent's.
  const cacheFolders = new Set<string>();
  if (!o.stdin) for (const s of sources) {
    try {
      cacheFolders.add(fs.lstatSync(fsPath(s)).isDirectory() ? s : path.posix.dirname(s));
    } catch (e) {
      throw fromSystemError(e, `source ${displayPath(s)}`);
    }
  }
  const xattr = xattrBinding();
  // Once per backup, counted as no file's problem: everything else is backed up as usual.
  if (!xattr && !o.stdin) o.sink.warn?.({ code: 'SNAP_XATTR', message: `extended attributes and ACLs are not backed up: ${xattrUnavailable()}` });
  const snapshots = await repo.listSnapshots();
  const parent = [...snapshots].reverse().find((s) => s.hostname === o.host.hostname && s.paths.join('\0') === sources.join('\0'));
  const a = new Archiver(repo, o, xattr, parent, ahead);
  const trusted = !!(o.trust && parent && o.trust.walk.snapshot === parent.id);
  const at: TrustAt | undefined = trusted ? { memo: o.trust!.walk.root, dirty: dirtyTree(o.trust!.dirty) } : undefined;
  const memoRoot = o.remember === true;
  let cached = false;
  for (const f of cacheFolders) {
    if (await repo.index.hasFilesUnder(fsEncode(f))) {
      cached = true;
      break;
    }
  }
  a.noFilesCache = !cached;
  const top = memoRoot ? new Map<string, MemoDir>() : undefined;
  let rootTree: Buffer;
  try {
    rootTree = o.stdin ? await a.streamTree(o.stdin) : await a.dirOfTrie('/', buildTrie(sources), at, top, '/');
    await o.beforeSave?.();
    o.signal?.throwIfAborted();
  } catch (e) {
    // Stopped (or failed): the lane reads nothing more; let pack writes already under way finish,
    // so none is cut off; write nothing more.
    await a.stopLane();
    await repo.objects.settle();
    await a.cacheSettled();
    // A stopped stream (stdin) fails with its own AbortError: the reason is the signal's.
    throw o.signal?.aborted ? o.signal.reason : e;
  }
  // From here a failure also waits for the files-cache batch written beside the walk (flushCache).
  const save = async (): Promise<CreateResult> => {
    if (o.skipUnchanged && parent) {
      await repo.objects.flush(); // the new trees are read back
      if (await sameSources(repo, sources, rootTree, parent.tree)) {
        await a.flushCache(true);
        return { snapshot: parent, warnings: a.summary.warnings, unchanged: true, trusted, stats: a.stats, ...(top?.has('/') ? { walk: { snapshot: parent.id, root: top.get('/')! } } : {}) };
      }
    }
    const summary: SnapshotSummary = {
      ...a.summary,
      dataAdded: 0,
      objectsAdded: 0,
      durationMs: 0,
    };
    // Flush before reading the stats, so they count every object this backup added.
    await repo.objects.flush();
    summary.dataAdded = repo.objects.stats.bytesAdded;
    summary.objectsAdded = repo.objects.stats.objectsAdded;
    // The time and the duration end at the same moment, once everything is written: the record's
    // time less its duration is when the backup started, which `trustedBefore` (live-stamp.ts)
    // relies on. (Taking the time before the flush made a slow flush look like an earlier start,
    // and files written just before the backup look changed since it.)
    const end = repo.clock.now();
    summary.durationMs = Math.max(0, Date.now() - started);
    const draft = {
      time: (o.time ?? end).toISOString(),
      hostname: o.host.hostname,
      username: o.host.username,
      paths: sources,
      tags: [...new Set(o.tags ?? [])].sort(),
      tree: rootTree,
      program: o.program,
      excludes: o.excludes ?? [],
      summary,
    };
    const snapshot = await repo.saveSnapshot(parent ? { ...draft, parent: Buffer.from(parent.id, 'hex') } : draft);
    for (const p of unmatched(a.leaveOut.rules)) o.sink.info?.(`exclude pattern '${displayPath(p)}' matched nothing`);
    if (a.unnamed.count > 0) {
      // One warning, not counted as a file's problem: such files rarely have attributes, and the
      // rest of each was backed up.
      const { count, first } = a.unnamed;
      o.sink.warn?.({ code: 'SNAP_XATTR', path: first, message: `extended attributes of ${count} entr${count === 1 ? 'y' : 'ies'} whose names are not UTF-8 were not read (the xattr binding takes names as text), e.g. ${first}` });
    }
    // The snapshot is saved: the files cache (a full or read-only cache folder of a remote
    // repository's index) is only a speed-up, and failing to update it does not undo the backup.
    try {
      await a.flushCache(true);
    } catch (e) {
      if (!(e instanceof SnapError) || e.code === 'SNAP_INTERRUPTED' || e.code === 'SNAP_INTERNAL') throw e;
      o.sink.warn?.({ code: e.code, message: `snapshot ${snapshot.id.slice(0, 8)} was saved, but the files cache in the local index could not be updated (${e.message}): the next backup reads these files again` });
    }
    return { snapshot, warnings: a.summary.warnings, trusted, stats: a.stats, ...(top?.has('/') ? { walk: { snapshot: snapshot.id, root: top.get('/')! } } : {}) };
  };
  try {
    return await save();
  } catch (e) {
    await a.cacheSettled();
    throw e;
  }
}

/**
 * Whether every source holds the same in both root trees: the same contents for a directory (its
 * tree), the same entry for anything else. The folders above the sources (whose times change
 * whenever anything beside a source does, /home/you) do not count.
 */
async function sameSources(repo: Repository, sources: string[], a: Buffer, b: Buffer): Promise<boolean> {
  if (a.equals(b)) return true;
  for (const s of sources) {
    const x = await locateAbs(repo, a, fsEncode(s));
    const y = await locateAbs(repo, b, fsEncode(s));
    if (!x?.node || !y?.node) return false;
    if (x.tree || y.tree) {
      if (!x.tree || !y.tree || !x.tree.equals(y.tree)) return false;
    } else if (!sameEntry(x.node, y.node)) return false;
  }
  return true;
}

function sameEntry(x: Node, y: Node): boolean {
  if (x.type !== y.type || x.size !== y.size || x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid) return false;
  if (x.mtime.sec !== y.mtime.sec || x.mtime.nsec !== y.mtime.nsec) return false;
  const cx = x.chunks ?? [];
  const cy = y.chunks ?? [];
  if (cx.length !== cy.length || !cx.every((c, i) => c.equals(cy[i]!))) return false;
  if ((x.target === undefined) !== (y.target === undefined) || (x.target && !x.target.equals(y.target!))) return false;
  const ax = x.xattrs ?? [];
  const ay = y.xattrs ?? [];
  return ax.length === ay.length && ax.every((v, i) => v.name.equals(ay[i]!.name) && v.value.equals(ay[i]!.value));
}

class Archiver {
  readonly stats: WalkStats = { lstat: 0, readdir: 0, trustedDirs: 0, cutOnThreads: 0, inLane: 0 };
  readonly summary = {
    filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0,
    bytesRead: 0, totalBytes: 0, totalFiles: 0, warnings: 0,
  };
  readonly leaveOut: LeaveOut;
  private readonly owners = new OwnerNames();
  private readonly progress: ProgressCounters = { files: 0, dirs: 0, bytes: 0 };
  private readonly repoId: { dev: bigint; ino: bigint } | undefined;
  private pendingCache: PendingDir[] = [];
  /** A batch of the files cache written beside the walk once its objects are durable (flushCache). */
  private cacheWrites: Promise<void> = Promise.resolve();
  private cacheWaiting = 0;
  private pendingFiles = 0;
  private chunker: FileChunker;
  /** The lane's chunker (lane()), made when a first large file is queued there. */
  private laneChunker: FileChunker | undefined;
  /** The lane: its last file's end, the files queued there (running included), and the walks waiting for room. */
  private laneTail: Promise<void> = Promise.resolve();
  private laneQueued = 0;
  /** Set once the backup failed or was stopped (stopLane). */
  private laneStopped: SnapError | undefined;
  /** When the lane's next turn is due (laneTurnDue, laneTurn). */
  private laneTurnAt = 0;
  private readonly laneWaiters: (() => void)[] = [];
  /** Where the chunk ids of small files are kept (IdSlab). */
  private readonly ids = new IdSlab();
  /** Set when the files cache has nothing under any source (a first backup): no need to ask per directory. */
  noFilesCache = false;
  /** Entries whose attributes could not be asked for (names that are not UTF-8): said once, at the end. */
  readonly unnamed: { count: number; first?: string } = { count: 0 };
  private readonly digestWords = new BigUint64Array(12);
  private readonly digestBytes = Buffer.from(this.digestWords.buffer);
  /** While a directory's files are read: their chunk ids still to come (readFile), awaited before its tree is made. */
  private idsDue: Promise<unknown>[] | undefined;
  /** Files being cut on threads now (cutRoom), and the walks waiting for one to finish. */
  private cutting = 0;
  private readonly cutWaiters: (() => void)[] = [];

  /** Said only when it is news: on the first backup of these paths (docs/design.md). */
  private readonly tellRepoSkipped: boolean;

  constructor(private readonly repo: Repository, private readonly o: CreateOptions, private readonly xattr: XattrBinding | undefined, parent: StoredSnapshot | undefined, private readonly ahead: WalkAhead | undefined) {
    this.leaveOut = new LeaveOut(o, this.stats);
    // The repository's own folder is skipped when backed up into itself (remote storage has none here).
    const st = repo.localRoot === undefined ? undefined : fs.statSync(fsPath(repo.localRoot), { bigint: true });
    this.repoId = st && { dev: st.dev, ino: st.ino };
    this.chunker = new FileChunker(-1, repo.gear);
    // The previous backup of the same paths tells how much there is: a percentage and an ETA.
    if (parent) this.progress.totalBytes = parent.summary.totalBytes;
    this.tellRepoSkipped = parent === undefined;
  }

  private warn(code: string, p: Buffer | string, message: string): void {
    this.summary.warnings++;
    const shown = typeof p === 'string' ? p : displayName(p);
    this.o.sink.warn?.({ code, path: shown, message: `${shown}: ${message}` });
  }

  /** A warning of a failed system call on `p`: its message names the path once. */
  private warnFailed(p: Buffer | string, what: string, e: unknown): void {
    this.warn(errnoCode(e) ?? 'SNAP_IO', p, `${what}: ${systemDetail(e, typeof p === 'string' ? p : displayName(p))}`);
  }

  /** The tree of a directory on the way to the sources: only the children that lead to one. */
  async dirOfTrie(abs: string, trie: SourceTrie, at: TrustAt | undefined, into: Map<string, MemoDir> | undefined, key: string): Promise<Buffer> {
    const dirBuf = fsEncode(abs);
    if (trie.source) return made(await this.dirTree(dirBuf, '', await this.lstat(dirBuf), at, into, key));
    const kids = into ? new Map<string, MemoDir>() : undefined;
    into?.set(key, { files: 0, bytes: 0, dirs: 0, kids: kids! });
    const nodes: Node[] = [];
    // Files named as sources use this folder's files-cache entries, as a walk of it does (they were
    // read again at every backup: a --files-from list of 20,000 files re-read its 231 MiB each time).
    // Only their entries are written: the folder's others, and its record, stay as they are.
    let cache: DirCache | undefined;
    for (const name of [...trie.children.keys()].sort((x, y) => Buffer.compare(fsEncode(x), fsEncode(y)))) {
      const child = trie.children.get(name)!;
      const nameBuf = fsEncode(name);
      const full = joinPath(dirBuf, nameBuf);
      if (child.source) {
        const kid = await this.entry(dirBuf, nameBuf, '', undefined, descend(at, nameBuf), kids);
        await kid?.pending;
        const xa = kid ? this.addXattrs(full, kid.node) : 'unknown';
        let node = kid?.node;
        if (kid?.node.type === 'file') {
          cache ??= { old: this.noFilesCache ? new Map() : await this.repo.index.filesInDir(dirBuf), updates: new Map() };
          node = await this.file(full, nameBuf, kid.node, kid.st, cache, xa);
        }
        if (node) nodes.push(node);
        continue;
      }
      const st = await this.lstat(full);
      if (!st) continue;
      const node = baseNode(nameBuf, st, this.owners);
      this.addXattrs(full, node);
      node.tree = await this.dirOfTrie(path.posix.join(abs, name), child, descend(at, nameBuf), kids, nameBuf.toString('latin1'));
      nodes.push(node);
    }
    if (cache && cache.updates.size > 0) {
      // Written once the chunks they name are durable, as a walked folder's (flushCache).
      await this.queueCache({ dir: dirBuf, files: packCachedFiles([...cache.updates].map(([k, f]) => [Buffer.from(k, 'latin1'), f])), stale: [] }, cache.updates.size);
    }
    return this.storeTree(nodes);
  }

  private async lstat(p: Buffer): Promise<EntryStat | undefined> {
    this.stats.lstat++;
    try {
      // Kept until the directory's tree is made: only what a backup reads of it (LeanStat).
      return LeanStat.of(fs.lstatSync(p, { bigint: true }));
    } catch (e) {
      this.warnFailed(p, 'cannot stat', e);
      return undefined;
    }
  }

  private async storeTree(nodes: Node[]): Promise<Buffer> {
    const bytes = encodeTree(nodes);
    const r = await this.repo.objects.add('tree', bytes);
    return r.id;
  }

  /**
   * Back up one directory entry, except a file's contents: its node and lstat result, or undefined
   * when it is excluded or unreadable.
   */
  private async entry(dir: Buffer, name: Buffer, rel: string, rootDev: bigint | undefined, at: TrustAt | undefined, memo: Map<string, MemoDir> | undefined, ahead?: EntryStat): Promise<Kid | undefined> {
    this.o.signal?.throwIfAborted();
    const full = joinPath(dir, name);
    // `ahead`: its lstat as the walk ahead took it (counted as made).
    if (ahead) this.stats.lstat++;
    const st = ahead ?? (await this.lstat(full));
    if (!st) return undefined;
    if (rel !== '' && this.leaveOut.excluded(full, rel, st)) return undefined;
    const node = baseNode(name, st, this.owners);
    switch (node.type) {
      case 'dir': {
        if (this.repoId && st.dev === this.repoId.dev && st.ino === this.repoId.ino) {
          if (this.tellRepoSkipped) this.o.sink.info?.(`${displayName(full)} is the repository itself; it is not backed up`);
          return undefined;
        }
        if (this.o.oneFileSystem && rootDev !== undefined && st.dev !== rootDev) {
          node.tree = await this.storeTree([]);
          return { node, st };
        }
        // Nothing reported at or below it since the previous walk: its tree is that walk's.
        const key = name.toString('latin1');
        const m = at && !at.dirty && rel !== '' ? at.memo : undefined;
        if (m?.tree && (await this.repo.objects.has(m.tree))) {
          node.tree = m.tree;
          this.trustedDir(m);
          memo?.set(key, m);
          return { node, st };
        }
        const t = await this.dirTree(full, rel, st, at, memo, key);
        if (!isLater(t)) {
          node.tree = t;
          return { node, st };
        }
        const pending = t.later.then((id) => void (node.tree = id));
        pending.catch(() => {}); // awaited by the parent, after the siblings
        return { node, st, pending };
      }
      case 'symlink':
        try {
          node.target = fs.readlinkSync(full, { encoding: 'buffer' });
        } catch (e) {
          this.warnFailed(full, 'cannot read symlink', e);
          return undefined;
        }
        return { node, st };
      case 'chardev':
      case 'blockdev':
        node.rdev = Number(st.rdev);
        return { node, st };
      default:
        return { node, st }; // file: read by the caller; fifo, socket: recorded by type, never opened
    }
  }

  /**
   * A digest of everything a directory's tree is made of, except file contents, which the files
   * cache's rule stands for (same size, mtime, ctime, inode and device: same bytes). When it
   * equals last backup's, the tree is last backup's: no files-cache read, no tree encoding.
   */
  private digest(kids: Kid[]): Buffer {
    const h = createHash('sha256');
    // Typed-array stores: Buffer.writeBigUInt64LE was 4% of an unchanged backup's main thread.
    const words = this.digestWords;
    const bytes = this.digestBytes;
    const u32 = new Uint32Array(words.buffer);
    u32[0] = DIGEST_VERSION | (this.xattr ? XATTR_FLAG : 0);
    u32[1] = kids.length;
    h.update(bytes.subarray(0, 8));
    for (const { node, st } of kids) {
      words[0] = st.dev;
      words[1] = st.ino;
      words[2] = st.mode;
      words[3] = st.nlink;
      words[4] = st.uid;
      words[5] = st.gid;
      words[6] = st.rdev;
      words[7] = st.size;
      words[8] = BigInt.asUintN(64, st.mtimeNs);
      words[9] = BigInt.asUintN(64, st.ctimeNs);
      u32[20] = node.name.length;
      u32[21] = node.target?.length ?? 0;
      u32[22] = Buffer.byteLength(node.user);
      u32[23] = Buffer.byteLength(node.group);
      h.update(bytes);
      h.update(node.name);
      if (node.target) h.update(node.target);
      h.update(node.user);
      h.update(node.group);
      h.update(node.tree ?? EMPTY);
    }
    return h.digest();
  }

  /**
   * A directory's tree, read from the file system. `at`: where it is in the previous walk and the
   * reported paths (its subdirectories may be taken from there); `into`: where to remember it.
   */
  private async dirTree(full: Buffer, rel: string, st: EntryStat | undefined, at: TrustAt | undefined, into: Map<string, MemoDir> | undefined, key: string): Promise<Buffer | Later> {
    const s = this.summary;
    const files = s.totalFiles;
    const bytes = s.totalBytes;
    const dirs = s.dirsNew + s.dirsChanged + s.dirsUnchanged;
    const warnings = s.warnings;
    const kids = into ? new Map<string, MemoDir>() : undefined;
    const listed = { ok: true };
    const walked = await this.walkDir(full, rel, st, at, kids, listed);
    // Without a memo to fill in, the tree may come later (walkDir); with one, walkDir makes it at
    // once, so that the counts below are this subtree's.
    if (!into) return walked;
    const tree = await made(walked);
    // A subtree with a problem (an unreadable file left out) is never trusted as a whole: read
    // again next time (its folders without a problem still may be).
    const ok = listed.ok && s.warnings === warnings;
    into.set(key, { ...(ok ? { tree: keptId(tree) } : {}), files: s.totalFiles - files, bytes: s.totalBytes - bytes, dirs: s.dirsNew + s.dirsChanged + s.dirsUnchanged - dirs, kids: kids! });
    return tree;
  }

  /** Count a directory taken from the previous walk: all of it unchanged. */
  private trustedDir(m: MemoDir): void {
    this.stats.trustedDirs++;
    this.summary.totalFiles += m.files;
    this.summary.filesUnchanged += m.files;
    this.summary.totalBytes += m.bytes;
    this.summary.dirsUnchanged += m.dirs;
    this.progress.files += m.files;
    this.progress.bytes += m.bytes;
    this.progress.dirs += m.dirs;
  }

  private async walkDir(full: Buffer, rel: string, st: EntryStat | undefined, at: TrustAt | undefined, memo: Map<string, MemoDir> | undefined, listed: { ok: boolean }): Promise<Buffer | Later> {
    this.stats.readdir++;
    // As the walk ahead listed it, while the repository was opened; else listed now.
    const ahead = this.ahead?.take(full);
    let names: Buffer[];
    if (ahead) names = ahead.names;
    else {
      try {
        names = fs.readdirSync(full, { encoding: 'buffer' });
      } catch (e) {
        this.warnFailed(full, 'cannot list directory', e);
        listed.ok = false;
        return this.storeTree([]);
      }
      names.sort(Buffer.compare);
      names = packedViews(names);
    }
    const rootDev = st?.dev;
    const kids: Kid[] = [];
    for (let i = 0; i < names.length; i++) {
      if (this.laneTurnDue()) await this.laneTurn();
      const name = names[i]!;
      const childRel = relBelow(rel, name);
      const kid = await this.entry(full, name, childRel, rootDev, descend(at, name), memo, ahead?.stats[i]);
      if (kid) kids.push(kid);
    }
    for (const k of kids) if (k.pending) await k.pending;
    this.progress.dirs++;
    const digest = this.digest(kids);
    const last = this.noFilesCache ? undefined : await this.repo.index.getDirRecord(full);
    if (last && last.digest.equals(digest) && (await this.repo.objects.has(last.tree))) {
      for (const { node, st: kst } of kids) if (node.type === 'file') this.unchangedFile(Number(kst.size));
      this.report(full);
      this.summary.dirsUnchanged++;
      return last.tree;
    }
    const cache: DirCache = { old: this.noFilesCache ? new Map() : await this.repo.index.filesInDir(full), updates: new Map() };
    const seen = new Set<string>();
    const updates: [Buffer, CachedFile][] = [];
    const nodes: Node[] = [];
    let complete = true; // every entry made it into the tree as it is now: the record may be kept
    // Large files a compression thread cuts (chunkedOnThread): the loop goes on while it does.
    // `made` holds each entry's node, or for those files the index of their promise in `later`.
    const later: Promise<Node | undefined>[] = [];
    const made: (Node | undefined | number)[] = [];
    // The chunk ids of new large files, which the compression threads compute (readFile).
    const due: Promise<unknown>[] = (this.idsDue = []);
    try {
      for (const { node: n, st: kst } of kids) {
        if (this.laneTurnDue()) await this.laneTurn();
        // Extended attributes only here, for directories that changed: an unchanged one's tree
        // already holds them (a change of attributes changes the entry's ctime, which the digest
        // covers). Nor for a file whose files-cache entry, of the same stamp, says it had none.
        const key = n.type === 'file' ? n.name.toString('latin1') : '';
        const old = n.type === 'file' ? cache.old.get(key) : undefined;
        const xa = old?.noXattrs && this.xattr && sameStamp(old, stampOf(kst)) ? 'none' : this.addXattrs(joinPath(full, n.name), n);
        if (xa === 'problem') complete = false;
        if (n.type !== 'file') {
          made.push(n);
          continue;
        }
        seen.add(key);
        if (this.cutOnThread(kst, old)) {
          await this.cutRoom();
          const p = this.file(joinPath(full, n.name), n.name, n, kst, cache, xa).finally(() => this.cutDone());
          p.catch(() => {}); // awaited below, after the other files
          made.push(later.push(p) - 1);
        } else if (this.inLane(kst, old)) {
          await this.laneRoom();
          this.stats.inLane++;
          const p = this.lane((due) => this.file(joinPath(full, n.name), n.name, n, kst, cache, xa, due));
          p.catch(() => {}); // awaited below, after the other files
          made.push(later.push(p) - 1);
        } else made.push(await this.file(joinPath(full, n.name), n.name, n, kst, cache, xa));
      }
    } finally {
      this.idsDue = undefined;
    }
    const finish = async (): Promise<Buffer> => {
      // The tree and the files-cache entries name the chunk ids the threads compute.
      const cut = await Promise.all(later);
      await Promise.all(due);
      kids.forEach(({ node: n, st: kst }, i) => {
        const m = made[i];
        const node = typeof m === 'number' ? cut[m] : m;
        if (n.type === 'file') {
          const key = n.name.toString('latin1');
          const upd = cache.updates.get(key);
          if (upd) updates.push([n.name, upd]);
          else if (!node || !cache.old.has(key) || !sameStamp(cache.old.get(key)!, stampOf(kst))) complete = false;
        }
        if (node) nodes.push(node);
      });
      const stale = [...cache.old.keys()].filter((k) => !seen.has(k)).map((k) => Buffer.from(k, 'latin1'));
      const bytes = encodeTree(nodes);
      const r = await this.repo.objects.add('tree', bytes);
      // Compared with the last backup of this directory (its record, else its files-cache entries);
      // a directory the index knows nothing of is new, even when an identical tree exists already
      // (two empty directories in a first backup).
      if (last) {
        if (r.id.equals(last.tree)) this.summary.dirsUnchanged++;
        else this.summary.dirsChanged++;
      } else if (cache.old.size > 0) {
        if (r.added) this.summary.dirsChanged++;
        else this.summary.dirsUnchanged++;
      } else this.summary.dirsNew++;
      // The record waits, like the files-cache entries, until what the tree names is durable.
      await this.queueCache({ dir: full, files: packCachedFiles(updates), stale, record: complete ? { digest, tree: r.id } : null }, updates.length + stale.length + 1);
      return r.id;
    };
    // Files still being cut on threads: the walk goes on (a memo's counts need the subtree whole).
    if (later.length === 0 || memo) return finish();
    const tree = finish();
    tree.catch(() => {}); // awaited by the parent (Kid.pending)
    return { later: tree };
  }

  /**
   * The root tree of a backup from a stream: one file, owner-only (a database dump is private),
   * owned by this user, dated now. The producer's outcome is checked before anything is saved.
   */
  async streamTree(s: StdinSource): Promise<Buffer> {
    const total = { bytes: 0 };
    const chunks: Buffer[] = [];
    const name = fsEncode(s.name);
    for await (const c of streamChunks(this.repo.gear, s.data, total)) {
      this.o.signal?.throwIfAborted();
      const id = this.repo.hashId(c);
      chunks.push(id);
      await this.repo.objects.add('blob', c, id);
      this.progress.bytes = total.bytes;
      this.report(name);
    }
    await s.finished?.();
    if (total.bytes === 0) this.warn('SNAP_EMPTY_INPUT', name, 'read 0 bytes: the snapshot holds an empty file (did the producer fail?)');
    const me = ownIds();
    const node: Node = {
      name, type: 'file', mode: 0o600, uid: me.uid, gid: me.gid, user: this.owners.user(me.uid), group: this.owners.group(me.gid),
      mtime: splitNs(BigInt(this.repo.clock.now().getTime()) * 1_000_000n), size: total.bytes, chunks,
    };
    Object.assign(this.summary, { filesNew: 1, totalFiles: 1, totalBytes: total.bytes, bytesRead: total.bytes });
    return this.storeTree([node]);
  }

  /**
   * Record the extended attributes of `full` in its node: whether it has `none`, `some`, some
   * could not be read (`problem`: warned), or whether it has any is `unknown` (no binding, or a
   * name the binding cannot take).
   */
  private addXattrs(full: Buffer, node: Node): XattrState {
    if (!this.xattr) return 'unknown';
    const r = readXattrs(this.xattr, full);
    if (!r) {
      this.unnamed.count++;
      this.unnamed.first ??= displayName(full);
      return 'unknown';
    }
    if (r.xattrs.length > 0) node.xattrs = r.xattrs;
    for (const p of r.problems) this.warn(p.code, full, p.message);
    return r.problems.length > 0 ? 'problem' : r.xattrs.length > 0 ? 'some' : 'none';
  }

  /** A file the directory record vouches for: counted like a files-cache hit. */
  private unchangedFile(size: number): void {
    this.summary.totalFiles++;
    this.progress.files++;
    this.summary.filesUnchanged++;
    this.summary.totalBytes += size;
    this.progress.bytes += size;
  }

  /**
   * Whether file() gives this file to a compression thread to cut (chunkedOnThread): a changed
   * large file, when the store has threads. walkDir then goes on with the next files meanwhile.
   */
  private cutOnThread(st: EntryStat, cached: CachedFile | undefined): boolean {
    return cached !== undefined && this.repo.objects.threads > 0 && Number(st.size) >= HASH_ON_THREADS && !sameStamp(cached, stampOf(st));
  }

  /** Wait until fewer than CUTTING files are being cut on threads, and count one more (cutDone: one less). */
  private async cutRoom(): Promise<void> {
    while (this.cutting >= CUTTING) await new Promise<void>((r) => this.cutWaiters.push(r));
    this.cutting++;
  }

  private cutDone(): void {
    this.cutting--;
    this.cutWaiters.shift()?.();
  }

  /**
   * Whether file() reads this file in the lane (lane()): a new large file, whose chunks a
   * compression thread hashes and compresses, when the store has threads.
   */
  private inLane(st: EntryStat, cached: CachedFile | undefined): boolean {
    return cached === undefined && this.repo.objects.threads > 0 && Number(st.size) >= HASH_ON_THREADS;
  }

  /**
   * Queue `read` (a new large file's file()) in the lane, where such files are read one after the
   * other with a chunker of their own, while the walk goes on with the next files and directories
   * (walkDir makes a directory's tree once its lane files are done). A first backup's large files
   * keep the compression thread busy and the main thread waiting for room in the ring a third of
   * the time; the walk's small files take that time. After laneRoom(). `read` puts the file's
   * chunk ids still to come in `due`: the lane reads the next file meanwhile, and the promise
   * returned settles once they are in its node.
   */
  private lane(read: (due: Promise<unknown>[]) => Promise<Node | undefined>): Promise<Node | undefined> {
    const due: Promise<unknown>[] = [];
    const read1 = this.laneTail.then(() => {
      if (this.laneStopped) throw this.laneStopped;
      return read(due);
    });
    // The next file is read once this one is, whichever way that ended (its failure is its directory's).
    this.laneTail = read1.then(
      () => {},
      () => {},
    );
    return read1
      .then(async (node) => {
        await Promise.all(due);
        return node;
      })
      .finally(() => {
        this.laneQueued--;
        this.laneWaiters.shift()?.();
      });
  }

  /**
   * While files are in the lane: the walk lets the event loop run every LANE_TURN_MS, so that the
   * lane, which waits for room in the ring there (the compression thread's answers free it), reads
   * its next chunks. Without turns the walk's small files took the thread and the ring, and the
   * large files were read at the end, with the compression thread idle between them. Tested
   * without awaiting anything (laneTurnDue), so an entry between turns costs no promise.
   */
  private laneTurnDue(): boolean {
    return this.laneQueued > 0 && performance.now() >= this.laneTurnAt;
  }

  private async laneTurn(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    this.laneTurnAt = performance.now() + LANE_TURN_MS;
  }

  /** The backup failed or was stopped: files queued in the lane are not read, the one being read ends at its next chunk (awaited here). */
  async stopLane(): Promise<void> {
    this.laneStopped ??= new SnapError('SNAP_INTERRUPTED', 'the backup ended before this file was read');
    await this.laneTail;
  }

  /** Wait until fewer than LANE_FILES files are queued in the lane, and count one more (lane() counts it off). */
  private async laneRoom(): Promise<void> {
    while (this.laneQueued >= LANE_FILES) await new Promise<void>((r) => this.laneWaiters.push(r));
    this.laneQueued++;
  }

  /**
   * `xattrs`: what addXattrs found (after the lstat of `st`), for the files-cache entry. `lane`:
   * read in the lane (lane()), with its chunker; its chunk ids to come go there.
   */
  private async file(full: Buffer, name: Buffer, node: Node, st: EntryStat, cache: DirCache | undefined, xattrs: XattrState, lane?: Promise<unknown>[]): Promise<Node | undefined> {
    const stamp = stampOf(st);
    if (Number(st.nlink) > 1) node.inode = { dev: Number(st.dev), ino: recordedInode(st.ino), links: Number(st.nlink) };
    const key = name.toString('latin1');
    const cached = cache?.old.get(key);
    const noXattrs = xattrs === 'none';
    this.progress.files++;
    if (cached && sameStamp(cached, stamp)) {
      // An entry of before the flag learns it once (written like a changed file's, below).
      if (noXattrs && !cached.noXattrs) cache!.updates.set(key, { ...cached, noXattrs });
      node.size = stamp.size;
      node.chunks = cached.chunks;
      this.summary.totalFiles++;
      this.summary.filesUnchanged++;
      this.summary.totalBytes += stamp.size;
      this.progress.bytes += stamp.size;
      this.report(full);
      return node;
    }
    // A large file's chunk ids come from the compression threads. A new file's content is probably
    // new: cut here, hashed and compressed there at once (ObjectStore.addHashing). A changed file's
    // chunks are mostly stored already (an edit in a large file): cut and hashed there, and only the
    // new ones read again here and stored (chunkedOnThread). Small files are cut and hashed here:
    // sent to the threads they cost more than they saved (every tree between them split the
    // threads' batches, and copies of small files are common).
    const read = await this.readFile(full, st, stamp.size < HASH_ON_THREADS ? 'here' : cached ? 'threads-stored' : 'threads', lane);
    if (!read) return undefined; // a warning; the snapshot does not hold it, nor count it
    this.summary.totalFiles++;
    node.size = read.size;
    node.chunks = read.chunks;
    if (cached) this.summary.filesChanged++;
    else this.summary.filesNew++;
    this.summary.totalBytes += read.size;
    if (read.stable) cache?.updates.set(key, cachedFile(stamp, read.chunks, noXattrs));
    this.report(full);
    return node;
  }

  private report(full: Buffer): void {
    this.progress.current = displayName(full);
    this.o.sink.progress?.(this.progress);
  }

  /**
   * Read, chunk and store a file. Chunk ids are computed `here`, or by the compression threads
   * (`threads`, a new large file: the returned `chunks` are then filled in once they are known,
   * which the directory being read waits for before its tree is made, `this.idsDue`; outside a
   * directory's files, this waits for them). A changed large file (`threads-stored`, its content
   * probably stored already) is cut and hashed by a compression thread (chunkedOnThread).
   * `lane`: a file of the lane (lane()), read with the lane's chunker; its ids to come go there.
   */
  private async readFile(full: Buffer, before: EntryStat, hashing: 'here' | 'threads' | 'threads-stored' = 'here', lane?: Promise<unknown>[]): Promise<{ size: number; chunks: Buffer[]; stable: boolean } | undefined> {
    let fd: number;
    try {
      fd = fs.openSync(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      this.warnFailed(full, 'cannot read', e);
      return undefined;
    }
    try {
      const opened = fs.fstatSync(fd, { bigint: true });
      if (!opened.isFile() || opened.ino !== before.ino) {
        this.warn('SNAP_CHANGED', full, 'was replaced while being backed up; skipped');
        return undefined;
      }
      if (hashing === 'threads-stored') {
        const r = await this.chunkedOnThread(full, fd, before, opened);
        if (r) return r;
      }
      // A file of one chunk (no larger than the smallest chunk) is read straight into the store's
      // ring where it can be, rather than into the chunker's buffer and then copied.
      const expected = Number(opened.size);
      if (hashing === 'here' && expected <= this.repo.gear.min) {
        const r = this.repo.objects.addRead('blob', fd, expected, (b) => this.repo.hashId(b));
        if (r) {
          this.progress.bytes += r.length;
          this.summary.bytesRead += r.length;
          return { size: r.length, chunks: r.id ? [this.ids.keep(r.id)] : [], stable: this.stableWhileRead(full, fd, before, r.length) };
        }
      }
      const chunks: Buffer[] = [];
      const due: Promise<void>[] = [];
      let size = 0;
      const chunker = lane ? (this.laneChunker ??= new FileChunker(-1, this.repo.gear)) : this.chunker;
      chunker.reset(fd, expected);
      for (let c = chunker.next(); c; c = chunker.next()) {
        size += c.length;
        this.o.signal?.throwIfAborted();
        this.progress.bytes += c.length;
        this.summary.bytesRead += c.length;
        if (lane && this.laneStopped) throw this.laneStopped;
        if (hashing === 'threads') {
          // The lane gives way while the ring is more than half taken, some of it by the walk's
          // files: they then find room (else compressed on this thread, which the walk needs), and
          // the large files' work is spread over the walk instead of filling the thread first.
          if (lane) await this.repo.objects.ringRoom(LANE_RING_SHARE);
          const { id } = await this.repo.objects.addHashing('blob', c);
          const at = chunks.push(EMPTY) - 1;
          const set = id.then((v) => void (chunks[at] = v));
          // Awaited (all together) after the last chunk; a failed store rejects it before then, or
          // the loop ends by throwing and nobody awaits it: either way not an unhandled rejection,
          // which ended the process with a stack trace (a pack write on a full disk).
          set.catch(() => {});
          due.push(set);
          continue;
        }
        const id = this.ids.keep(this.repo.hashId(c));
        chunks.push(id);
        await this.repo.objects.add('blob', c, id);
      }
      if (due.length > 0) {
        const all = Promise.all(due);
        all.catch(() => {}); // awaited with the directory's files (or below)
        // The lane's files run beside the walk: the directory being read now is not theirs.
        if (lane) lane.push(all);
        else if (this.idsDue) this.idsDue.push(all);
        else await all;
      }
      // Kept until the directory's tree is made: an array that grew by push holds room for 17
      // ids; a copy holds just its own (a small file's one: about 150 bytes less). The threads'
      // ids are still to be written into `chunks` (due).
      return { size, chunks: due.length > 0 ? chunks : chunks.slice(), stable: this.stableWhileRead(full, fd, before, size) };
    } catch (e) {
      // Source reads fail with plain system errors; a SnapError comes from the repository side
      // (a pack write failing with EIO, the index on a full disk) and is fatal, never a file warning;
      // so is the reason the backup was stopped.
      if (e instanceof SnapError || this.o.signal?.aborted) throw e;
      this.warnFailed(full, 'read failed', e);
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * A changed large file cut and hashed by a compression thread (ObjectStore.chunkFile) while this
   * thread goes on with the directory's other files and the next directories (walkDir does not wait
   * for it there): its chunks are mostly stored already (an edit), so only those the index does not
   * know are read again here, hashed and stored. A chunk whose bytes now differ from those the
   * thread hashed (the file changed between the reads) is stored as read now, under its own id, and
   * the file is reported changed while read. Undefined when the store has no threads (readFile cuts
   * it here). New files are not cut there: a first backup keeps both threads busy compressing, and
   * cutting there too made it slower (docs/performance.md, "Changed large files cut on the threads").
   */
  private async chunkedOnThread(full: Buffer, fd: number, before: EntryStat, opened: fs.BigIntStats): Promise<{ size: number; chunks: Buffer[]; stable: boolean } | undefined> {
    const r = await this.repo.objects.chunkFile(fd, Number(opened.size), this.repo.gear);
    if (!r) return undefined;
    if ('error' in r) throw Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {});
    this.stats.cutOnThreads++;
    const chunks: Buffer[] = [];
    let buf: Buffer | undefined;
    let off = 0;
    let same = true;
    for (let i = 0; i < r.lengths.length; i++) {
      this.o.signal?.throwIfAborted();
      const len = r.lengths[i]!;
      let id: Buffer = Buffer.from(r.ids.slice(i * ID_BYTES, (i + 1) * ID_BYTES));
      if (!(await this.repo.objects.has(id))) {
        if (!buf || buf.length < len) buf = Buffer.allocUnsafeSlow(len);
        const got = readFully(fd, buf.subarray(0, len), off);
        const bytes = buf.subarray(0, got);
        const now = this.repo.hashId(bytes);
        if (got < len || !now.equals(id)) {
          same = false;
          id = now;
        }
        await this.repo.objects.add('blob', bytes, id);
      }
      chunks.push(id);
      off += len;
    }
    this.progress.bytes += r.bytes;
    this.summary.bytesRead += r.bytes;
    return { size: r.bytes, chunks, stable: this.stableWhileRead(full, fd, before, r.bytes, same) };
  }

  /**
   * Whether a file read whole (`size` bytes) stayed as `lstat` saw it before (size, mtime, ctime)
   * and `same` holds; a SNAP_CHANGED warning when not: the snapshot holds the bytes as read, and
   * the files cache does not take it.
   */
  private stableWhileRead(full: Buffer, fd: number, before: EntryStat, size: number, same = true): boolean {
    const after = fs.fstatSync(fd, { bigint: true });
    const stable = same && after.size === before.size && after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs && BigInt(size) === after.size;
    if (!stable) this.warn('SNAP_CHANGED', full, 'changed while it was being read; the snapshot holds the bytes as read');
    return stable;
  }

  /** A folder's files-cache writes (`ops` of them), to go with the next batch (flushCache). */
  private async queueCache(dir: PendingDir, ops: number): Promise<void> {
    this.pendingCache.push(dir);
    this.pendingFiles += ops;
    if (this.pendingFiles >= (this.o.cacheBatch ?? CACHE_BATCH)) await this.flushCache();
  }

  /**
   * Write buffered files-cache updates once the objects they name are durable and indexed. During
   * the walk (CACHE_BATCH entries) a batch waits for that beside the walk (ObjectStore.durable:
   * nothing is written early but the open pack of trees), written after the batches before it.
   * When CACHE_WAITING batches are waiting already (packs of file data that do not fill: little new
   * data), and at the end (`final`), everything is written now (flush), then the entries: memory
   * holds at most CACHE_WAITING + 1 batches.
   */
  async flushCache(final = false): Promise<void> {
    const batch = this.pendingCache;
    this.pendingCache = [];
    this.pendingFiles = 0;
    if (final || this.cacheWaiting >= CACHE_WAITING) {
      await this.repo.objects.flush();
      await this.cacheWrites;
      await this.putCache(batch);
      return;
    }
    if (batch.length === 0) return;
    this.cacheWaiting++;
    const durable = this.repo.objects.durable();
    this.cacheWrites = Promise.all([this.cacheWrites, durable])
      .then(() => this.putCache(batch))
      .finally(() => this.cacheWaiting--);
    this.cacheWrites.catch(() => {}); // awaited by a later flushCache, or by cacheSettled after a failure
  }

  /** After a failure or a stop (the object store settled): the batch waiting beside the walk has ended, whichever way. */
  async cacheSettled(): Promise<void> {
    await this.cacheWrites.catch(() => {});
  }

  private async putCache(batch: PendingDir[]): Promise<void> {
    await this.repo.index.putFilesInDirs(batch);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Files of at least this size have their chunks hashed by the compression threads (the
 * average chunk: a smaller file is one chunk). docs/performance.md, "Chunk ids on the compression threads".
 */
const HASH_ON_THREADS = 1024 * 1024;
/**
 * Files cut on threads at once (chunkedOnThread), each with its descriptor open: the walk waits
 * for one to finish beyond this, so open files and directories waiting for their trees stay few.
 */
const CUTTING = 4;
/**
 * New large files queued in the lane at once (Archiver.lane): the walk waits beyond this, so the
 * directories waiting for their trees stay few. None is open until its turn.
 */
const LANE_FILES = 16;
/** How long the walk runs at most without a turn for the lane (Archiver.laneTurn). */
const LANE_TURN_MS = 2;
/** The share of the compression ring past which the lane waits (Archiver.readFile). */
const LANE_RING_SHARE = 0.5;

/**
 * A tree id the walk keeps (snap watch keeps it for days), copied into memory of its own: an id
 * read from a directory record is a 32-byte slice of Node's shared 8 KB buffer pool, and kept as
 * it is it would keep that whole block alive.
 */
/** A directory's tree, waited for when it comes later. */
async function made(t: Buffer | Later): Promise<Buffer> {
  return isLater(t) ? t.later : t;
}

function isLater(t: Buffer | Later): t is Later {
  return !Buffer.isBuffer(t);
}

function keptId(id: Buffer): Buffer {
  const b = Buffer.allocUnsafeSlow(id.length);
  id.copy(b);
  return b;
}

/** Where the child `name` is in the previous walk and the reported paths; undefined: read all of it. */
function descend(at: TrustAt | undefined, name: Buffer): TrustAt | undefined {
  if (!at || !at.dirty || at.dirty.deep) return at && !at.dirty ? { memo: at.memo?.kids.get(name.toString('latin1')), dirty: undefined } : undefined;
  const key = name.toString('latin1');
  return { memo: at.memo?.kids.get(key), dirty: at.dirty.kids.get(key) };
}

function ownIds(): { uid: number; gid: number } {
  try {
    const u = os.userInfo();
    return { uid: Math.max(u.uid, 0), gid: Math.max(u.gid, 0) };
  } catch {
    return { uid: 0, gid: 0 }; // no passwd entry (containers)
  }
}
function stampOf(st: EntryStat): FileStamp {
  return { size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev };
}

/**
 * A files-cache entry, kept until its directory's tree is made. Written out as a literal: `{
 * ...stamp, chunks }` gave every entry a hidden class of its own (about 300 bytes more each).
 */
function cachedFile(s: FileStamp, chunks: Buffer[], noXattrs: boolean): CachedFile {
  return { size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, ino: s.ino, dev: s.dev, chunks, noXattrs };
}

/** What a backup found of an entry's extended attributes (Archiver.addXattrs). */
type XattrState = 'none' | 'some' | 'problem' | 'unknown';
