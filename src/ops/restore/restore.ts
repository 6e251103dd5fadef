// `snap restore`: recreate a snapshot (or parts of it) under a target directory.
// Safety: names in trees are validated on decode (no '/', '.', '..'); every directory is an open
// descriptor, opened without following a symlink relative to its parent's, and everything in it is
// reached through that descriptor (restore-dir.ts), so neither a planted symlink nor a rename by
// another user redirects a write outside the target. Every file is written to a temporary name and
// renamed, so an interrupted restore never leaves a complete-looking file. Directory metadata is
// applied on the descriptor once everything in the directory is written. This is the filesystem
// output of the restore walk (output.ts, the walk export uses too: any depth), which runs after the
// snapshot's expanded size was checked (budget.ts).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError, isSnapError } from '../../core/errors.js';
import { displayName, fsEncode, joinPath } from '../../core/bytes.js';
import { TaskPool } from '../../core/pool.js';
import { writeSparse } from '../../core/sparse.js';
import type { ProgressSink } from '../../core/progress.js';
import type { Node } from '../../model/node.js';
import { type CountableTree, Tree } from '../../model/tree.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import { type ObjectLocation, type PackReader, type Repository, readObjectVia } from '../../repo/repository.js';
import { splitPath } from '../tree/navigate.js';
import { PathSelection } from '../tree/selection.js';
import { type LinkMember, type RestoreOutput, type RestoreWalk, restoreInto } from './output.js';
import { toHex } from '../../core/ids.js';
import { TMP_PREFIX_B, TempNames } from './temp-names.js';
import { CODEC_RAW } from '../../store/codec.js';
import { FileWriter, type Pending, type WriteJob, writerUnpacks } from './writer.js';
import type { Answer } from './wire.js';
import type { RestoreSpool } from '../../repo/spool.js';
import { makeDevice, makeFifo } from '../fs/special-files.js';
import { DIR_FLAGS, DIR_PATH_FLAGS, O_PATH, fdPath, openTarget } from './dir.js';
import { heldTimes, needsTimeCheck, sameMtime, timeArg, timeNotSet } from './time.js';
import { checkExpansion, expandedSize } from './budget.js';
import { xattrBinding, xattrUnavailable } from '../fs/xattr-binding.js';
import { type MirrorSink, type Removal, isRealDir, planPrune, pruneDir, removeEntry } from './mirror.js';
import { applyXattrs } from '../fs/xattr-apply.js';

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
  /**
   * Mirror (`--delete`, restore-mirror.ts): below each restored path, remove what the snapshot
   * does not have (and what is in the way of what it has). In a dry run: listed only.
   */
  delete?: boolean;
  /** With delete: told of each entry removed (or that a dry run would remove), contents before their directory. */
  onRemoved?: (r: Removal) => Promise<void> | void;
  /**
   * Tests only (the CLI sets it from SNAP_RESTORE_TEST_PAUSE): awaited right after the restore
   * made a directory, before it opens it, and right after it made a temporary special-file node,
   * before it sets its metadata: the two moments another user's swap must not redirect anything
   * (issue 20, items 1 and 2). `path` is where the entry is, under the target as the kernel names it.
   */
  testPause?: (at: { kind: 'dir' | 'temp'; path: Buffer }) => Promise<void>;
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
  /** With delete: entries removed (or that would be). */
  removed: number;
}

/** Leftovers of an earlier restore are removed without a word (they were never the user's). */
const QUIET_REMOVAL: MirrorSink = { removed: async () => {}, failed: () => {} };
/** Writer threads: 2 keep a 2-core machine busy (each costs ~10 MB of memory). */
const WRITER_THREADS = 2;
/**
 * Files being restored at once: tasks of the pool, and as many quick files (Restorer.quick), each
 * bound on its own; every one holds its directory open until answered. With 64 the main thread and the writer threads took turns waiting for each other in the small
 * files' phase (both a fifth idle in --cpu-prof); with 256 the threads get their batches while the
 * main thread prepares the next files: the bench corpus's encrypted restore 5.08 s -> 4.6 s.
 */
const FILES_IN_FLIGHT = 256;
/** Bytes of small files and chunks read ahead of the writer threads. */
const INFLIGHT_BYTES = 32 * 1024 * 1024;
/** Chunks of one file out on the writer threads at once. */
const CHUNKS_AHEAD = 2;
/**
 * Remote storage: packs' worth of bytes the reader holds or fetches at once (whole packs fetched
 * ahead of the writers, then the objects of them still to be read; store/pack-reader.ts), and
 * fetches ahead of the reads at once. With the default pack size, 128 MiB: in the benchmark corpus
 * the objects fetched and not yet read reach 118 MiB while its three large files are restored
 * beside its small ones (their chunks sit in packs of their own, read one chunk at a time); with
 * 96 MiB packs were dropped and their objects read one request each.
 */
const HELD_PACKS = 8;
const PACK_FETCHES = 2;
/** Locations the plan looked up, kept for the restore's own reads (about 150 bytes each): at most this many. */
const PLANNED_LOCATIONS = 100_000;
/** The plan looks chunk ids up this many at a time (one call each), with at most PLAN_BATCHES calls unanswered. */
const PLAN_BATCH = 1024;
const PLAN_BATCHES = 4;
const EMPTY = Buffer.alloc(0);

/** A blob for a writer thread (Restorer.readStored). */
type StoredJob = Pick<WriteJob, 'data' | 'codec' | 'rawLength' | 'id' | 'what' | 'inPack' | 'from'> & { release?: () => void };

export async function restoreSnapshot(repo: Repository, snap: StoredSnapshot, o: RestoreOptions): Promise<RestoreResult> {
  // The paths `ls` and `cat` accept: absolute snapshot paths, or paths relative to a source path.
  const r = new Restorer(repo, o, await PathSelection.resolve(repo, snap, o.include ?? []));
  try {
    await r.run(snap);
  } finally {
    await r.closeSpool();
  }
  return r.result;
}

/**
 * A directory of the restore, open (restore-dir.ts). It stays open while anything inside it is
 * being written: the walk of its entries, each file task, each subdirectory (so a directory's
 * metadata comes after its children's), a hard-link group whose first file is in it. The last
 * one to let go sets its owner, attributes, mode and times on the descriptor and closes it.
 */
class DirState {
  refs = 1;
  closed = false;
  private readonly prefix: Buffer;
  constructor(
    readonly fd: number,
    /** Opened with O_PATH (a directory its owner may not read): metadata through /proc/self/fd/N, not on the descriptor. */
    readonly pathOnly: boolean,
    /** The path shown in messages (target/...). */
    readonly shown: Buffer,
    readonly parent: DirState | undefined,
    /** The snapshot's directory entry (none for the target itself, whose metadata stays). */
    readonly node: Node | undefined,
    /** Created by this restore: it holds only what the restore put there. */
    readonly fresh: boolean,
    /**
     * The temporary name it was made under in its parent (a directory this restore made), until
     * it is complete and renamed to its own (reveal). Its files are written under their own names
     * (direct): until then none of them is at its final path.
     */
    public hidden?: Buffer,
  ) {
    this.prefix = fdPath(fd, '');
  }

  at(name: Buffer | string): Buffer {
    return Buffer.concat([this.prefix, typeof name === 'string' ? Buffer.from(name) : name]);
  }

  /** Where a file `name` is written before it is renamed to `dest`: `dest` itself in a hidden directory. */
  tmpFor(dest: Buffer, tmpName: () => string): Buffer {
    return this.hidden ? dest : this.at(tmpName());
  }
}

/** A directory the walk is in (ops/tree/walk.ts walks the snapshot; this is what restore keeps of it). */
interface Frame {
  dir: DirState | undefined; // undefined in a dry run
  shown: Buffer;
  /** At or below a restored path: pruned with --delete. */
  mirror: boolean;
  /** The path's names, kept until the frame is a mirror (then unused). */
  mparts: Buffer[];
  /** Dry run: the target holds this directory as a real directory (not through a symlink), so its removals can be listed. */
  real: boolean;
}

/** The first restored path of a hard-link group, which later members link to. */
interface LinkFirst {
  dir: DirState | undefined; // undefined in a dry run
  name: Buffer;
  shown: Buffer;
  node: Node;
}

/** Directories kept open for hard-link groups at most: beyond, a later member is written as a copy. */
const MAX_GROUP_DIRS = 1024;

class Restorer {
  readonly result: RestoreResult = { files: 0, dirs: 0, links: 0, special: 0, bytes: 0, unchanged: 0, skipped: 0, damaged: [], warnings: 0, removed: 0 };
  /** The restored paths (the --include paths, else the snapshot's source paths): --delete prunes at and below them. */
  private mirrorRoots = PathSelection.ALL;
  private readonly mirrorSink: MirrorSink = {
    removed: (r) => this.o.onRemoved?.(r),
    failed: (shown, e) => {
      const se = fromSystemError(e, `removing ${displayName(shown)}`);
      this.warn(se.code, shown, `not removed (--delete): ${se.message}`);
    },
  };
  private readonly pool: TaskPool;
  /** Files handed over by `quick` and not yet answered; who waits for room, and for none. */
  private quickInFlight = 0;
  private readonly quickRoom: (() => void)[] = [];
  private readonly quickIdle: (() => void)[] = [];
  /** A quick file's failure that ends the restore (a full disk). */
  private quickFatal: unknown;
  private readonly groupDirs = new Map<DirState, number>();
  private readonly open = new Set<DirState>();
  private readonly policy: OverwritePolicy;
  private progress = { files: 0, dirs: 0, bytes: 0, current: '' };
  private readonly tempNames: TempNames;
  private writer: FileWriter | undefined;
  /** Where stored objects are read (store/pack-reader.ts): whole packs ahead of the reads, on remote storage. */
  private readonly reader: PackReader;
  /** Chunk ids the count's walk told of, not looked up yet; lookups made and still to be applied (planLookups). */
  private planIds: Buffer[] = [];
  private planChain: Promise<void> = Promise.resolve();
  private planPending: Promise<void>[] = [];
  /** Remote storage: where packs fetched whole are written for the writer threads (repo/spool.ts). */
  private readonly spool: RestoreSpool | undefined;
  /** Remote storage: trees are read through the reader too (planned with the files: planTree). */
  private treesVia: ((pack: string, offset: number, length: number) => Promise<Buffer>) | undefined;
  /** Where the objects the plan looked up are (by id as latin1), so the restore does not look them up again. */
  private readonly locations = new Map<string, ObjectLocation>();
  /** Bytes of single-chunk files read and not yet written (see withBudget). */
  private inflight = 0;
  private budgetWaiters: (() => void)[] = [];
  private readonly xattr = xattrBinding();
  private xattrMissingSaid = false;

  constructor(
    private readonly repo: Repository,
    private readonly o: RestoreOptions,
    /** The --include paths. */
    private readonly selection: PathSelection,
  ) {
    // Files are written on worker threads (writer.ts): many files in flight keep them
    // busy while the main thread reads and verifies the next ones; memory is bounded by bytes.
    this.pool = new TaskPool(o.concurrency ?? FILES_IN_FLIGHT, 64);
    // Remote storage: packs fetched whole go to a spool in the cache folder, where the writer
    // threads read the objects they write (repo/spool.ts); a dry run writes nothing.
    this.spool = o.dryRun ? undefined : repo.restoreSpool();
    this.reader = repo.packReader({ budgetBytes: HELD_PACKS * repo.config.packSize, fetches: PACK_FETCHES, spool: this.spool });
    this.policy = o.overwrite ?? 'never';
    this.tempNames = new TempNames(repo.host);
  }

  /** Remove the spool (after the writer threads have ended). */
  async closeSpool(): Promise<void> {
    await this.spool?.close().catch(() => {});
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

  /** Whether the path `parts` is a restored path or below one. */
  private isMirror(parts: Buffer[]): boolean {
    return this.mirrorRoots.covers(parts);
  }

  /** --delete: prune the directory just opened (or, in a dry run, list what would go). */
  private async prune(d: DirState | undefined, shown: Buffer, nodes: Tree, real: boolean): Promise<void> {
    if (d && !d.fresh) this.result.removed += await pruneDir(d.fd, shown, nodes, TMP_PREFIX_B, this.mirrorSink);
    else if (!d && real) this.result.removed += await planPrune(shown, nodes, TMP_PREFIX_B, this.mirrorSink);
  }

  /** --delete: remove a directory standing where the snapshot has the non-directory `node` (a dry run lists it). */
  private async clearWay(d: DirState | undefined, node: Node, shown: Buffer, real: boolean): Promise<void> {
    if (d) {
      const st = fs.lstatSync(d.at(node.name), { throwIfNoEntry: false });
      if (st?.isDirectory()) this.result.removed += await removeEntry(d.fd, node.name, shown, true, this.mirrorSink);
    } else if (real && isRealDir(shown)) {
      this.result.removed += await planPrune(shown, Tree.EMPTY, TMP_PREFIX_B, this.mirrorSink);
      this.result.removed++;
      await this.mirrorSink.removed({ dest: shown, dir: true });
    }
  }

  async run(snap: StoredSnapshot): Promise<void> {
    if (this.o.delete) this.mirrorRoots = this.selection.named ? this.selection : PathSelection.of(snap.paths.map((p) => splitPath(fsEncode(p))));
    let rootDir: DirState | undefined;
    let shown = fsEncode(path.resolve(this.o.target));
    let inodes: number | undefined;
    if (!this.o.dryRun) {
      const { fd, pathOnly } = openTarget(shown);
      try {
        // The kernel's name of the opened folder, as bytes (fs.realpathSync walks it as text).
        shown = fs.readlinkSync(fdPath(fd), { encoding: 'buffer' });
        inodes = fs.statfsSync(fdPath(fd).toString()).files;
      } catch (e) {
        fs.closeSync(fd);
        throw fromSystemError(e, `restore target ${displayName(shown)}`);
      }
      rootDir = new DirState(fd, pathOnly, shown, undefined, undefined, false);
      this.open.add(rootDir);
    }
    try {
      // The writer threads start first: they load (zstd among it) while the count's walk reads the trees.
      if (!this.o.dryRun) this.writer = new FileWriter(WRITER_THREADS, this.repo.objects.ctx, this.repo.threadReads() ?? this.spool?.reads);
      try {
        // Before anything is written: a crafted tree DAG is refused here (restore-budget.ts).
        // On remote storage the count's walk also tells the reader every object the restore reads,
        // so packs mostly wanted are fetched whole, ahead of the writers (store/pack-reader.ts).
        const plan = !this.o.dryRun && this.repo.localRoot === undefined ? (chunks: Buffer[]) => this.plan(chunks) : undefined;
        const x = await expandedSize({ readTree: (id) => this.planTree(id, plan !== undefined) }, snap.tree, this.selection, this.o.signal, plan);
        if (plan) {
          await this.planSettled();
          this.treesVia = this.read;
        }
        checkExpansion(x, inodes, `snapshot ${snap.id.slice(0, 8)}`);
        if (rootDir) await this.sweepLeftovers(rootDir);
        const walk = await this.walk(snap.tree, rootDir, shown);
        await this.pool.drain();
        await this.quickDrain();
        for (const first of await walk.unfinished()) this.releaseGroup(first);
      } finally {
        // On failure, drain the pool first: no task may still be waiting for a writer thread.
        await this.pool.drain().catch(() => {});
        await this.quickDrain().catch(() => {});
        await this.writer?.close();
        this.writer = undefined;
      }
    } finally {
      // After a failure or an interruption: close what is still open, without its metadata. A
      // hidden directory gets its own name first (every parent still open): the files in it are
      // complete (those in flight were finished or removed), as in a directory that never was.
      for (const d of this.open) this.reveal(d);
      for (const d of this.open) this.close(d);
    }
  }

  /**
   * Tell the reader what a file's restore reads (objects missing from the index are left to the
   * restore to report); the locations are kept for the restore's reads, up to PLANNED_LOCATIONS.
   */
  private plan(chunks: Buffer[]): Promise<void> | undefined {
    for (const id of chunks) this.planIds.push(id);
    return this.planIds.length >= PLAN_BATCH ? this.planLookups() : undefined;
  }

  /**
   * Look up the chunk ids told so far in one call (LevelDB reads them on a thread of the pool while
   * the count's walk goes on), their reads told to the reader in the order the walk met them.
   * Waits (returns a promise) while PLAN_BATCHES calls are still to be answered.
   */
  private planLookups(): Promise<void> | undefined {
    if (this.planIds.length === 0) return undefined;
    const ids = this.planIds;
    this.planIds = [];
    const found = this.repo.index.lookupMany(ids);
    found.catch(() => {}); // thrown where the chain is awaited
    this.planChain = this.planChain.then(async () => {
      const locs = await found;
      for (let i = 0; i < ids.length; i++) if (locs[i]) this.expectRead(ids[i]!, locs[i]!);
    });
    this.planChain.catch(() => {}); // thrown by planSettled, or where the walk waits (a count that stopped early waits for none)
    this.planPending.push(this.planChain);
    return this.planPending.length > PLAN_BATCHES ? this.planPending.shift() : undefined;
  }

  /** After the count's walk: the last lookups made and every one applied. */
  private async planSettled(): Promise<void> {
    this.planLookups();
    this.planPending = [];
    await this.planChain;
  }

  /** Tell the reader of a read the restore will make, and keep where it is. */
  private expectRead(id: Buffer, loc: ObjectLocation): void {
    const pack = this.reader.expect(loc.pack, loc.offset, loc.length, this.spool !== undefined && writerUnpacks(loc.codec));
    if (this.locations.size < PLANNED_LOCATIONS) this.locations.set(id.toString('latin1'), { ...loc, pack });
  }

  /**
   * A tree the count's walk reads; on remote storage the restore's walk reads it again, in the same
   * order, through the reader (told of it here), so its pack is fetched ahead with the others.
   */
  private async planTree(id: Buffer, plan: boolean): Promise<CountableTree> {
    // Counting alone needs no entry objects (model/tree.ts sketchTree): the walk decodes each tree.
    if (!plan) return this.repo.readTreeSketch(id);
    const loc = await this.repo.index.lookup(id);
    if (loc?.type === 'tree') this.reader.expect(loc.pack, loc.offset, loc.length);
    // Its pack fetched whole, once, for this walk's reads of the trees in it (store/pack-reader.ts
    // readEarly); the entry just looked up is the one it reads by.
    return this.repo.readTreeSketch(id, this.readEarly, loc);
  }

  private readonly readEarly = (pack: string, offset: number, length: number): Promise<Buffer> => this.reader.readEarly(pack, offset, length);

  /**
   * The restore walk (output.ts: the snapshot's one walk, iterative: any depth, with the --include
   * selection and the hard-link grouping export uses too) into the target: this is the filesystem
   * output. Its expansion was counted first (budget.ts), so the walk keeps no guard.
   */
  private async walk(root: Buffer, rootDir: DirState | undefined, shown: Buffer): Promise<RestoreWalk<LinkFirst>> {
    const rootMirror = this.o.delete === true && this.isMirror([]);
    const rootReal = !rootDir && this.o.delete === true && fs.statSync(shown, { throwIfNoEntry: false })?.isDirectory() === true;
    const stack: Frame[] = [{ dir: rootDir, shown, mirror: rootMirror, mparts: [], real: rootReal }];
    const out: RestoreOutput<LinkFirst> = {
      // A directory's entries, read once the walk goes into it (its frame is on top): pruned first with --delete.
      read: async (id, at) => {
        const nodes = await this.readTree(id, at);
        const f = stack[stack.length - 1]!;
        if (f.mirror) await this.prune(f.dir, at, nodes, f.real);
        return nodes;
      },
      leave: () => {
        const f = stack.pop()!;
        if (f.dir) this.drop(f.dir);
      },
      dir: async ({ node, path: childShown }) => {
        const f = stack[stack.length - 1]!;
        const mparts = f.mirror ? f.mparts : [...f.mparts, node.name];
        const mirror = this.o.delete === true && (f.mirror || this.isMirror(mparts));
        // Dry run: a restored path that the target holds as something else (a symlink) would be removed first.
        if (!f.dir && mirror && !f.mirror && f.real && !isRealDir(childShown) && fs.lstatSync(childShown, { throwIfNoEntry: false })) {
          this.result.removed++;
          await this.mirrorSink.removed({ dest: childShown, dir: false });
        }
        const child = await this.dir(f.dir, node, childShown, mirror);
        if (child === false) return false;
        const real = !child && f.real && isRealDir(childShown);
        stack.push({ dir: child, shown: childShown, mirror, mparts, real });
        return true;
      },
      entry: async ({ node, path: childShown, link }) => {
        const f = stack[stack.length - 1]!;
        const d = f.dir;
        // --delete and a restored path that is a file: a directory in its way goes (inside a
        // mirrored directory, pruning already removed it).
        if (this.o.delete && !f.mirror && this.isMirror([...f.mparts, node.name])) await this.clearWay(d, node, childShown, f.real);
        if (!link && d?.fresh && this.quickFits(node)) return this.quick(node, childShown, d);
        return this.scheduled(node, childShown, d, link);
      },
    };
    return restoreInto(this.repo, root, { base: shown, selection: this.selection, signal: this.o.signal, guard: false }, out);
  }

  /** An entry restored by a task of the pool, which holds its directory until it is done. */
  private async scheduled(node: Node, shown: Buffer, d: DirState | undefined, link: LinkMember<LinkFirst> | undefined): Promise<void> {
    // A group's later names wait for its first to register: it does, whatever becomes of it.
    const settle = (): void => {
      if (link?.first) link.register(undefined); // no effect once registered
    };
    if (d) this.hold(d);
    try {
      await this.pool.run(async () => {
        try {
          await this.entry(node, shown, d, link);
        } finally {
          settle();
          if (d) this.drop(d);
        }
      });
    } catch (e) {
      settle();
      if (d) this.drop(d); // not scheduled
      throw e;
    }
  }

  private async readTree(id: Buffer, shown: Buffer): Promise<Tree> {
    try {
      return await this.repo.readTree(id, this.treesVia);
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
      this.result.damaged.push(displayName(shown));
      this.warn(e.code, shown, `directory contents cannot be restored: ${e.message}`);
      return Tree.EMPTY;
    }
  }

  private hold(d: DirState): void {
    d.refs++;
  }

  /** A quick file's answer (QuickFile): its time checked and progress told, or its failure named. */
  quickAnswered(q: QuickFile, a: Answer | undefined, e: Error | undefined): void {
    this.quickInFlight--;
    if (q.spooled) this.reader.settled(q.spooled);
    try {
      if (e) {
        try {
          this.damagedData(e, q.shown);
        } catch (e2) {
          this.entryFailed(e2, q.shown);
        }
      } else {
        this.checkTime(q.node, a?.timeNs === undefined ? undefined : BigInt(a.timeNs), q.shown);
        this.progress.bytes += q.node.size;
        this.progress.current = displayName(q.shown);
        this.o.sink.progress?.(this.progress);
      }
    } catch (fatal) {
      // Ends the restore: the walk's next quick file throws it, or quickDrain at the end.
      this.quickFatal ??= fatal;
    } finally {
      this.drop(q.dir);
      this.quickRoom.shift()?.();
      if (this.quickInFlight === 0) for (const w of this.quickIdle.splice(0)) w();
    }
  }

  /** Wait until every quick file is answered; throw what ended the restore among them. */
  private async quickDrain(): Promise<void> {
    while (this.quickInFlight > 0) await new Promise<void>((r) => this.quickIdle.push(r));
    if (this.quickFatal) throw this.quickFatal;
  }

  /** Let go of `d`; the last one sets its metadata and closes it, then lets go of its parent (a loop: any depth). */
  private drop(d: DirState): void {
    for (let x: DirState | undefined = d; x && --x.refs <= 0 && !x.closed; x = x.parent) {
      if (x.node) this.dirMeta(x, x.node);
      this.reveal(x);
      this.close(x);
    }
  }

  /**
   * A hidden directory (made under a temporary name) renamed to its own name in its parent, which
   * is open still (the directory holds it). Its parent was made by this restore (0700 until its
   * own metadata is set), so nothing else is in the way of the name.
   */
  private reveal(d: DirState): void {
    const tmp = d.hidden;
    if (!tmp || !d.parent || !d.node) return;
    d.hidden = undefined;
    try {
      fs.renameSync(d.parent.at(tmp), d.parent.at(d.node.name));
    } catch (e) {
      this.warn(errnoCode(e) ?? 'SNAP_IO', d.shown, `restored under the temporary name ${displayName(tmp)}, not renamed to its own: ${(e as Error).message}`);
    }
  }

  private close(d: DirState): void {
    if (d.closed) return;
    d.closed = true;
    this.open.delete(d);
    try {
      fs.closeSync(d.fd);
    } catch {
      // nothing to do: the descriptor is gone either way
    }
  }

  /** A dry run's entry, told to onPlanned; true, for the callers' returns. */
  private async planned(dest: Buffer, node: Node, linkTo?: Buffer): Promise<true> {
    await this.o.onPlanned?.({ dest, node, linkTo });
    return true;
  }

  /**
   * The directory `node` inside `parent`: created (0700 until its metadata is set) or, when it
   * exists, opened as it is, never through a symlink. undefined in a dry run; false when it is
   * skipped (warned).
   */
  private async dir(parent: DirState | undefined, node: Node, shown: Buffer, mirror = false): Promise<DirState | undefined | false> {
    this.result.dirs++;
    this.progress.dirs++;
    if (!parent) {
      await this.planned(shown, node);
      return undefined;
    }
    // In a directory this restore made (nothing else is in it, and no other user can write in it),
    // under a temporary name until it is complete (reveal): its files are then written under
    // their own names, without a temporary name and a rename each.
    const hidden = parent.fresh ? Buffer.from(this.tmpName()) : undefined;
    const p = parent.at(hidden ?? node.name);
    let fresh = false;
    try {
      fs.mkdirSync(p, { mode: 0o700 });
      fresh = true;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST' || hidden) return this.dirFailed(e, shown);
    }
    // A hidden directory is where its parent is now (the kernel's name of the parent's descriptor: a
    // hidden parent too is under its temporary name).
    if (fresh && this.o.testPause) await this.o.testPause({ kind: 'dir', path: hidden ? joinPath(fs.readlinkSync(fdPath(parent.fd), { encoding: 'buffer' }), hidden) : shown });
    let fd: number;
    let pathOnly = false;
    try {
      try {
        fd = fs.openSync(p, DIR_FLAGS);
      } catch (e) {
        // A directory its owner may not read (mode 0300), met by a user who is not root.
        if (errnoCode(e) !== 'EACCES') throw e;
        fd = fs.openSync(p, DIR_PATH_FLAGS);
        pathOnly = true;
      }
    } catch (e) {
      const code = errnoCode(e);
      if ((code === 'ELOOP' || code === 'ENOTDIR') && mirror && this.o.delete) {
        // --delete: what stands where the snapshot has a directory (a symlink: removed, never
        // followed) goes, and the directory is made in its place.
        const n = await removeEntry(parent.fd, node.name, shown, false, this.mirrorSink);
        this.result.removed += n;
        this.result.dirs--;
        this.progress.dirs--;
        if (n > 0) return this.dir(parent, node, shown, false);
      }
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        // Said as what stands there now (open gives ENOTDIR for a symlink too, with O_DIRECTORY).
        const st = fs.lstatSync(p, { throwIfNoEntry: false });
        const what = !st ? 'gone' : st.isSymbolicLink() ? 'a symlink, not followed' : describeType(st);
        this.result.skipped++;
        this.warn(
          'SNAP_UNSAFE_PATH',
          shown,
          fresh
            ? `was made by this restore and then replaced by another (${what}) before it was opened; nothing is written through it`
            : `exists and is not a directory (${what}); its contents are not restored`,
        );
        return false;
      }
      if (hidden) {
        try {
          fs.rmdirSync(p); // made a moment ago, empty: not left under its temporary name
        } catch {
          // the next restore into this target removes it
        }
      }
      return this.dirFailed(e, shown);
    }
    this.hold(parent);
    const d = new DirState(fd, pathOnly, shown, parent, node, fresh, hidden);
    this.open.add(d);
    if (!fresh) await this.sweepLeftovers(d);
    return d;
  }

  /** A directory that cannot be created or opened: named, and everything in it left out (exit 3). */
  private dirFailed(e: unknown, shown: Buffer): false {
    // The system's message names the /proc/self/fd path snap used: the warning names the entry.
    if (e instanceof Error) e.message = e.message.replace(/, \w+ '\/proc\/self\/fd\/.*$/s, '');
    const se = fromSystemError(e, `restoring ${displayName(shown)}`);
    if (se.code === 'SNAP_NO_SPACE' || se.code === 'SNAP_INTERNAL') throw se;
    this.result.skipped++;
    this.warn(se.code, shown, `${se.message}; nothing in it is restored`);
    return false;
  }

  /**
   * Temporary files and hidden directories of an earlier restore that was stopped (killed, or a
   * second Ctrl-C) in a directory that exists already: removed, as a successful restore leaves
   * none (issue 10, defect 5). Those of a restore still running (into the same target from another
   * terminal) are left alone: their names say which process made them (temp-names.ts).
   */
  private async sweepLeftovers(d: DirState): Promise<void> {
    let names: Buffer[];
    try {
      names = fs.readdirSync(d.at('.'), { encoding: 'buffer' });
    } catch {
      return;
    }
    const now = this.repo.clock.now().getTime();
    for (const name of names) {
      const changed = (): number | undefined => {
        try {
          return fs.lstatSync(d.at(name)).ctimeMs;
        } catch {
          return undefined;
        }
      };
      if (!this.tempNames.isLeftover(name, changed, now)) continue;
      try {
        fs.unlinkSync(d.at(name));
      } catch (e) {
        // A directory that restore was making (hidden until complete), with what it holds: removed
        // through descriptors, never following a symlink (mirror.ts removeEntry).
        if (errnoCode(e) === 'EISDIR') await removeEntry(d.fd, name, joinPath(d.shown, name), true, QUIET_REMOVAL);
        // else gone, or not ours to remove
      }
    }
  }

  private async entry(node: Node, shown: Buffer, dir: DirState | undefined, link: LinkMember<LinkFirst> | undefined): Promise<void> {
    try {
      this.o.signal?.throwIfAborted();
      // Files and symlinks get their extended attributes once they are in place (a file from a
      // writer thread too); directories and special files with the rest of their metadata.
      if (node.type === 'file') {
        if ((await this.file(node, shown, dir, link)) && dir) this.restoreXattrs(node, dir.at(node.name), shown);
      } else if (node.type === 'symlink') {
        if ((await this.symlink(node, shown, dir)) && dir) this.restoreXattrs(node, dir.at(node.name), shown);
      }
      else if (node.type === 'socket') this.result.special++; // a socket cannot be recreated; its listener is gone
      else await this.special(node, shown, dir);
    } catch (e) {
      this.entryFailed(e, shown);
    }
  }

  /** An entry that failed: skipped and named (exit 3), or thrown when it ends the restore. */
  private entryFailed(e: unknown, shown: Buffer): void {
    // A dry run writes nothing, so nothing in it fails for one entry: an error there is the
    // listing's (onPlanned: a closed standard output) and ends it, as a stopped restore does.
    if (this.o.dryRun || this.o.signal?.aborted) throw e;
    const se = fromSystemError(e, `restoring ${displayName(shown)}`);
    if (se.code === 'SNAP_NO_SPACE' || se.code === 'SNAP_INTERNAL') throw se;
    this.result.skipped++;
    this.warn(se.code, shown, se.message);
  }

  /**
   * Whether a file goes by `quick`: at most one chunk, no extended attributes, its object read by a
   * writer thread (from the local repository, or from the spool's copy of its pack when that is
   * there already: `quick` looks). The caller checks it is not a hard-link member and that its
   * directory was made by this restore, so nothing is in its way.
   */
  private quickFits(node: Node): boolean {
    return node.type === 'file' && (node.chunks?.length ?? 0) <= 1 && !node.xattrs?.length && this.writer !== undefined && this.writer.readsStored;
  }

  /**
   * A file quickFits: handed to a writer thread without a task of the pool, or a promise and an
   * await at each of the steps entry, file, writeFile and writeSmall take (on the bench corpus
   * they were the main thread's garbage and much of its time in the small files' phase). Its
   * answer comes to a QuickFile (quickAnswered), which lets go of its directory. Waits only for
   * room (FILES_IN_FLIGHT of them at once) and, on a repository index served by another process,
   * for the lookup.
   */
  private async quick(node: Node, shown: Buffer, dir: DirState): Promise<void> {
    if (this.quickFatal) throw this.quickFatal;
    this.o.signal?.throwIfAborted();
    while (this.quickInFlight >= FILES_IN_FLIGHT) await new Promise<void>((r) => this.quickRoom.push(r));
    const chunk = node.chunks?.[0];
    let job: StoredJob = { data: EMPTY, codec: CODEC_RAW, rawLength: 0, what: 'an empty file' };
    let spooled: string | undefined;
    if (chunk) {
      let loc: ObjectLocation | Promise<ObjectLocation> | undefined;
      try {
        loc = this.blobAt(chunk);
        if (loc instanceof Promise) loc = await loc;
      } catch (e) {
        this.result.files++; // as writeFile counts it before the lookup fails
        try {
          this.damagedData(e, shown);
        } catch (e2) {
          this.entryFailed(e2, shown);
        }
        return;
      }
      if (this.spool && writerUnpacks(loc.codec)) {
        // Remote storage: its pack's copy in the spool now, or the usual way (which waits for it).
        const at = this.reader.locateNow(loc.pack, loc.offset, loc.length);
        if (!at) return this.scheduled(node, shown, dir, undefined);
        job = { data: EMPTY, codec: loc.codec, rawLength: loc.rawLength, id: chunk, inPack: loc.pack, from: at };
        spooled = at.pack;
      } else if (!this.threadReads(loc)) {
        // An object the threads do not unpack (deflate, from before zstd): the usual way.
        return this.scheduled(node, shown, dir, undefined);
      } else job = this.readByThread(chunk, loc);
    }
    this.result.files++;
    this.result.bytes += node.size;
    this.progress.files++;
    if (job.rawLength !== node.size) {
      if (spooled) this.reader.settled(spooled);
      this.result.damaged.push(displayName(shown));
      this.warn('SNAP_CORRUPT', shown, `chunks hold ${job.rawLength} bytes but the file has ${node.size}; not restored`);
      return;
    }
    this.hold(dir);
    this.quickInFlight++;
    const dest = dir.at(node.name);
    this.writer!.submit(this.fileJob(job, node, dir.tmpFor(dest, () => this.tmpName()), dest), new QuickFile(this, node, shown, dir, spooled));
  }

  /** Decide what to do with an existing entry at `dest`; true means write. */
  private async mayWrite(node: Node, shown: Buffer, dir: DirState): Promise<boolean> {
    // A directory this restore created holds only what the restore put there (names in a tree
    // are unique): no need to look for an existing entry. Saves an lstat per file.
    if (dir.fresh) return true;
    const dest = dir.at(node.name);
    const st = await fsp.lstat(dest).catch(() => undefined);
    if (!st) return true;
    if (st.isDirectory()) {
      this.result.skipped++;
      this.warn('SNAP_EXISTS', shown, 'a directory is in the way; not replaced');
      return false;
    }
    // The same content with other metadata is not "identical": a mirror restore (--delete) must
    // leave the snapshot's mode (and, as root, owner), so such an entry is written again.
    const sameMeta = (node.type === 'symlink' || (st.mode & 0o7777) === (node.mode & 0o7777)) && (!this.o.asRoot || (st.uid === node.uid && st.gid === node.gid));
    const same = sameMeta && ((node.type === 'file' && st.isFile() && st.size === node.size && sameMtime(st, node)) || (await sameSpecial(node, st, dest)));
    if (same && this.policy !== 'always') {
      this.result.unchanged++;
      return false;
    }
    if (this.policy === 'never') {
      this.result.skipped++;
      this.warn('SNAP_EXISTS', shown, "exists and differs; not overwritten (use --overwrite if-changed or always)");
      return false;
    }
    return true;
  }

  /** Unique within this run and naming this process (temp-names.ts); O_EXCL (or link/symlink's EEXIST) guards against anyone else's. */
  private tmpName(): string {
    return this.tempNames.next();
  }

  /** true when the file was written (or would be, in a dry run); false when skipped or linked. */
  private async file(node: Node, shown: Buffer, dir: DirState | undefined, link: LinkMember<LinkFirst> | undefined): Promise<boolean> {
    if (link && !link.first) {
      const first = await link.group;
      try {
        // Only a name the snapshot records as the first's twin is a link (output.ts sameFile).
        if (first && link.same) return await this.link(node, first, shown, dir);
        return await this.writeFile(node, shown, dir);
      } finally {
        // The last name met lets go of the first's directory, once its link is made: a path
        // through a descriptor is looked up when the system call runs, on another thread.
        if (link.last) this.releaseGroup(first);
      }
    }
    let written = false;
    try {
      written = await this.writeFile(node, shown, dir);
    } finally {
      if (link) link.register(written && (!dir || this.holdForGroup(dir)) ? { dir, name: node.name, shown, node } : undefined);
    }
    return written;
  }

  /** Keep the first name's directory open for the group's later names (bounded, see MAX_GROUP_DIRS). */
  private holdForGroup(dir: DirState): boolean {
    const n = this.groupDirs.get(dir);
    if (n === undefined && this.groupDirs.size >= MAX_GROUP_DIRS) return false;
    this.groupDirs.set(dir, (n ?? 0) + 1);
    if (n === undefined) this.hold(dir);
    return true;
  }

  /** A group is done (or the restore is): let go of its first name's directory, held by holdForGroup. */
  private releaseGroup(first: LinkFirst | undefined): void {
    const d = first?.dir;
    if (!d) return;
    const n = this.groupDirs.get(d)! - 1;
    if (n > 0) this.groupDirs.set(d, n);
    else {
      this.groupDirs.delete(d);
      this.drop(d);
    }
  }

  private async link(node: Node, first: LinkFirst, shown: Buffer, dir: DirState | undefined): Promise<boolean> {
    if (dir && !(await this.mayWrite(node, shown, dir))) return false;
    this.result.links++;
    if (!dir || !first.dir) {
      await this.planned(shown, node, first.shown);
      return false;
    }
    if (first.dir.closed) return this.writeFile(node, shown, dir); // no longer open (see MAX_GROUP_DIRS)
    const dest = dir.at(node.name);
    const tmp = dir.tmpFor(dest, () => this.tmpName());
    await fsp.link(first.dir.at(first.name), tmp);
    if (tmp !== dest) await fsp.rename(tmp, dest);
    return false; // its attributes are the first's
  }

  private async writeFile(node: Node, shown: Buffer, dir: DirState | undefined): Promise<boolean> {
    if (dir && !(await this.mayWrite(node, shown, dir))) return false;
    this.result.files++;
    this.result.bytes += node.size;
    this.progress.files++;
    if (!dir) return this.planned(shown, node);
    const dest = dir.at(node.name);
    const tmp = dir.tmpFor(dest, () => this.tmpName());
    const chunks = node.chunks ?? [];
    if (chunks.length <= 1 && this.writer) return this.writeSmall(node, chunks[0], tmp, dest, shown);
    // A larger file's chunks go to the writer threads, each counted against the budget while it is
    // read and written; without them (a dry run has none), it holds one chunk at a time, counted
    // as one of the largest size, so however many large files the pool starts, few are read at once.
    if (this.writer) return this.writeChunks(node, tmp, dest, shown);
    return this.withBudget(Math.min(node.size, this.repo.config.chunker.maxSize), () => this.writeChunks(node, tmp, dest, shown));
  }

  /**
   * A file of several chunks. With writer threads, each chunk's stored object is read here and
   * unpacked, verified and written at its offset by a thread, up to CHUNKS_AHEAD of the file at
   * once (the main thread of a restore of large files did all of that itself: docs/performance.md,
   * "Large files' chunks on the writer threads"); without, read, verified and written here, one
   * chunk after the other. The descriptor stays open until every chunk sent is answered.
   */
  private async writeChunks(node: Node, tmp: Buffer, dest: Buffer, shown: Buffer): Promise<boolean> {
    const fh = await fsp.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    let ok = false;
    const sent: Promise<number>[] = [];
    try {
      let pos = 0;
      let end = 0;
      try {
        for (const id of node.chunks ?? []) {
          this.o.signal?.throwIfAborted();
          if (this.writer) {
            const { job, held: bytes } = await this.readCounted(id, await this.blobAt(id));
            const p = this.writer.writeChunk({ fd: fh.fd, pos, ...job }).finally(() => {
              this.unreserve(bytes);
              job.release?.();
            });
            p.catch(() => {}); // awaited below, in order, or settled before the descriptor is closed
            sent.push(p);
            pos += job.rawLength;
            this.progress.bytes += job.rawLength;
            while (sent.length >= CHUNKS_AHEAD) end = Math.max(end, await sent.shift()!);
            continue;
          }
          const data = await this.readBlob(id);
          end = Math.max(end, await writeSparse(fh, data, pos));
          pos += data.length;
          this.progress.bytes += data.length;
        }
        while (sent.length > 0) end = Math.max(end, await sent.shift()!);
      } catch (e) {
        return this.damagedData(e, shown) ?? false;
      }
      if (pos !== node.size) {
        this.result.damaged.push(displayName(shown));
        this.warn('SNAP_CORRUPT', shown, `chunks hold ${pos} bytes but the file has ${node.size}; not restored`);
        return false;
      }
      if (end < node.size) await fh.truncate(node.size); // trailing zeros were skipped: set the size
      if (this.o.asRoot) await fh.chown(node.uid, node.gid);
      await fh.chmod(node.mode);
      const time = timeArg(node);
      await fh.utimes(time, time);
      if (needsTimeCheck(node)) this.checkTime(node, (await fh.stat({ bigint: true })).mtimeNs, shown);
      ok = true;
    } finally {
      // No thread may still write to the descriptor when it is closed (its number could be reused).
      await Promise.allSettled(sent);
      await fh.close();
      if (!ok) await fsp.rm(tmp, { force: true });
    }
    if (tmp !== dest) await fsp.rename(tmp, dest);
    this.progress.current = displayName(shown);
    this.o.sink.progress?.(this.progress);
    return true;
  }

  /** A time before 1970 that the target did not take exactly: said loudly (exit 3). */
  private checkTime(node: Node, gotNs: bigint | undefined, shown: Buffer): void {
    if (gotNs === undefined || heldTimes(node).includes(String(gotNs))) return;
    this.warn('SNAP_TIME', shown, timeNotSet(node, gotNs));
  }

  /** Run `fn` once `bytes` fit in the budget (a file larger than the budget runs alone). */
  private async withBudget<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    await this.reserve(bytes);
    try {
      return await fn();
    } finally {
      this.unreserve(bytes);
    }
  }

  /**
   * Bytes of an object this process holds from its read until its write (counted against the
   * budget): none when a writer thread reads it from a local repository itself (the thread holds
   * one object at a time), so the walk goes on through small files while the threads write large
   * ones. From remote storage it may come in a ranged read even with a spool: counted until it is
   * found in the spool.
   */
  private heldFor(loc: ObjectLocation): number {
    return this.threadReads(loc) ? 0 : loc.rawLength;
  }

  /** A small file's job for a writer thread: its object and its metadata, in one shape for every job (no spread: the objects stay small and fast). */
  private fileJob(job: StoredJob, node: Node, tmp: Buffer, dest: Buffer): WriteJob {
    return {
      data: job.data, codec: job.codec, rawLength: job.rawLength, what: job.what, inPack: job.inPack, from: job.from, id: job.id,
      tmp, dest, size: node.size, mode: node.mode, time: timeArg(node),
      checkTime: needsTimeCheck(node) ? heldTimes(node) : undefined,
      owner: this.o.asRoot ? { uid: node.uid, gid: node.gid } : undefined,
    };
  }

  /** Whether a writer thread reads this object from the (local) repository itself. */
  private threadReads(loc: ObjectLocation): boolean {
    return this.writer !== undefined && this.writer.readsStored && !this.spool && writerUnpacks(loc.codec);
  }

  /** The job of an object a writer thread reads itself (threadReads): where it is stored, no bytes. */
  private readByThread(id: Buffer, loc: ObjectLocation): StoredJob {
    return { data: EMPTY, codec: loc.codec, rawLength: loc.rawLength, id, inPack: loc.pack, from: { pack: loc.pack, offset: loc.offset, length: loc.length } };
  }

  /**
   * readStored, its bytes counted against the budget while this process holds them (heldFor; none
   * once it is found in the spool, where the thread reads it); `held`: what the caller unreserves
   * once the write is answered.
   */
  private async readCounted(id: Buffer, loc: ObjectLocation): Promise<{ job: StoredJob; held: number }> {
    const held = this.heldFor(loc);
    await this.reserve(held);
    let job: StoredJob;
    try {
      job = await this.readStored(id, loc);
    } catch (e) {
      this.unreserve(held);
      throw e;
    }
    if (job.from && held > 0) {
      this.unreserve(held);
      return { job, held: 0 };
    }
    return { job, held };
  }

  /** Wait until `bytes` fit in the budget, and count them (anything larger than the budget alone). */
  private async reserve(bytes: number): Promise<void> {
    while (this.inflight > 0 && this.inflight + bytes > INFLIGHT_BYTES) await new Promise<void>((r) => this.budgetWaiters.push(r));
    this.inflight += bytes;
  }

  private unreserve(bytes: number): void {
    this.inflight -= bytes;
    for (const w of this.budgetWaiters.splice(0)) w();
  }

  /**
   * A file of at most one chunk: its stored object is read here and handed to a writer thread,
   * which decompresses and verifies it (the checks of ObjectStore.get) before writing the file.
   */
  private async writeSmall(node: Node, chunk: Buffer | undefined, tmp: Buffer, dest: Buffer, shown: Buffer): Promise<boolean> {
    let job: StoredJob = { data: EMPTY, codec: CODEC_RAW, rawLength: 0, what: 'an empty file' };
    let gotNs: bigint | undefined;
    let held = 0;
    try {
      if (chunk) {
        // A local repository's object: looked up and handed over without waiting on anything (no
        // bytes held here; this path runs once per small file, and its promises were garbage).
        let loc = this.blobAt(chunk);
        if (loc instanceof Promise) loc = await loc;
        if (this.threadReads(loc)) job = this.readByThread(chunk, loc);
        else ({ job, held } = await this.readCounted(chunk, loc));
      }
      if (job.rawLength !== node.size) {
        this.result.damaged.push(displayName(shown));
        this.warn('SNAP_CORRUPT', shown, `chunks hold ${job.rawLength} bytes but the file has ${node.size}; not restored`);
        return false;
      }
      gotNs = await this.writer!.write(this.fileJob(job, node, tmp, dest));
    } catch (e) {
      return this.damagedData(e, shown) ?? false;
    } finally {
      this.unreserve(held);
      job.release?.();
    }
    this.checkTime(node, gotNs, shown);
    this.progress.bytes += node.size;
    this.progress.current = displayName(shown);
    this.o.sink.progress?.(this.progress);
    return true;
  }

  /** Where a blob is stored: at once when the index is this process's (lookupNow), else a promise. */
  private blobAt(id: Buffer): ObjectLocation | Promise<ObjectLocation> {
    const planned = this.locations.size > 0 ? this.locations.get(id.toString('latin1')) : undefined;
    if (planned) return checkedBlob(id, planned);
    const loc = this.repo.index.lookupNow(id);
    return loc instanceof Promise ? loc.then((l) => checkedBlob(id, l)) : checkedBlob(id, loc);
  }

  /** A blob, read through the reader, decoded and verified (ObjectStore.get's checks). */
  private async readBlob(id: Buffer): Promise<Buffer> {
    return readObjectVia(this.read, id, await this.blobAt(id), this.repo.objects.ctx);
  }

  private readonly read = (pack: string, offset: number, length: number): Promise<Buffer> => this.reader.read(pack, offset, length);

  /**
   * A blob as stored (ObjectStore.get without unpacking; objects of other codecs are unpacked here),
   * or where a writer thread reads it (`from`: the repository's pack on local storage, the spool's
   * copy on remote storage; then `release` once the job is answered); `located`: its index entry,
   * when the caller has it.
   */
  private async readStored(id: Buffer, located?: ObjectLocation): Promise<StoredJob> {
    const loc = located ?? (await this.blobAt(id));
    const inPack = loc.pack; // the thread describes the object (objectWhat) only if it must
    if (!writerUnpacks(loc.codec)) {
      // Unpacked (and verified) here; the thread checks the bytes against the id once more, as it
      // does every object (without the id it took them for damaged: deflate objects of
      // repositories from before zstd were never restored by a thread).
      const raw = await readObjectVia(this.read, id, loc, this.repo.objects.ctx);
      return { data: raw, codec: CODEC_RAW, rawLength: raw.length, id, inPack };
    }
    const job = { codec: loc.codec, rawLength: loc.rawLength, id, inPack };
    if (this.writer?.readsStored) {
      // The thread reads it (a local repository): only where it is stored travels.
      if (!this.spool) return this.readByThread(id, loc);
      const got = await this.reader.locate(loc.pack, loc.offset, loc.length);
      if (Buffer.isBuffer(got)) return { ...job, data: got };
      return { ...job, data: EMPTY, from: got, release: () => this.reader.settled(got.pack) };
    }
    return { ...job, data: await this.reader.read(loc.pack, loc.offset, loc.length) };
  }

  private async symlink(node: Node, shown: Buffer, dir: DirState | undefined): Promise<boolean> {
    if (dir && !(await this.mayWrite(node, shown, dir))) return false;
    this.result.special++;
    if (!dir) {
      await this.planned(shown, node);
      return false;
    }
    const tmp = dir.at(this.tmpName());
    await fsp.symlink(node.target!, tmp);
    try {
      this.entryMeta(tmp, node, shown, false);
      await fsp.rename(tmp, dir.at(node.name));
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    return true;
  }

  private async special(node: Node, shown: Buffer, dir: DirState | undefined): Promise<void> {
    if ((node.type === 'chardev' || node.type === 'blockdev') && !this.o.asRoot) {
      this.result.skipped++;
      this.warn('SNAP_PERMISSION', shown, `is a device node; only root can create it (skipped)`);
      return;
    }
    if (dir && !(await this.mayWrite(node, shown, dir))) return;
    this.result.special++;
    if (!dir) {
      await this.planned(shown, node);
      return;
    }
    // Created by a helper program (special-files.ts) in the entry's own directory, reached
    // through this process's descriptor of it; an ASCII temporary name, renamed into place.
    const name = this.tmpName();
    const tmp = dir.at(name);
    if (node.type === 'fifo') makeFifo(dir.fd, name);
    else makeDevice(dir.fd, name, node.type as 'chardev' | 'blockdev', node.rdev ?? 0);
    await this.o.testPause?.({ kind: 'temp', path: joinPath(dir.shown, Buffer.from(name)) });
    try {
      this.entryMeta(tmp, node, shown, true);
      await fsp.rename(tmp, dir.at(node.name));
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Owner, attributes, mode (not of symlinks) and times of a symlink or special file just created
   * at `p`: set through an O_PATH descriptor of the entry itself, opened without following it and
   * checked to be what was created, so a node swapped for a symlink by another user is refused
   * and nothing it points to is touched (issue 20, item 2). Throws: the caller removes `p`.
   */
  private entryMeta(p: Buffer, node: Node, shown: Buffer, chmod: boolean): void {
    const fd = fs.openSync(p, O_PATH | fs.constants.O_NOFOLLOW);
    try {
      const st = fs.fstatSync(fd);
      if (!sameType(node, st)) throw new SnapError('SNAP_UNSAFE_PATH', `its temporary entry was replaced by another (${describeType(st)}) while it was restored; not restored`);
      const self = fdPath(fd).toString();
      // chown, chmod and utimes of /proc/self/fd/N act on the entry N was opened on, a symlink too.
      if (this.o.asRoot) fs.chownSync(self, node.uid, node.gid);
      this.restoreXattrs(node, p, shown);
      if (chmod) fs.chmodSync(self, node.mode);
      const time = timeArg(node);
      fs.utimesSync(self, time, time);
      if (needsTimeCheck(node)) this.checkTime(node, fs.fstatSync(fd, { bigint: true }).mtimeNs, shown);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A directory's metadata, on its descriptor, once everything in it is written. */
  private dirMeta(d: DirState, node: Node): void {
    const self = fdPath(d.fd).toString();
    try {
      if (this.o.asRoot && d.pathOnly) fs.chownSync(self, node.uid, node.gid);
      else if (this.o.asRoot) fs.fchownSync(d.fd, node.uid, node.gid);
      // After chown (which clears security.capability), before chmod (a user who is not root
      // cannot set user.* attributes on an entry without write permission). `N/.` is the
      // directory itself for the binding's l*xattr calls (a bare /proc/self/fd/N is the link).
      this.restoreXattrs(node, d.at('.'), d.shown);
      // An O_PATH descriptor takes no fchmod/futimes; /proc/self/fd/N names the same directory.
      if (d.pathOnly) fs.chmodSync(self, node.mode);
      else fs.fchmodSync(d.fd, node.mode);
      const time = timeArg(node);
      if (d.pathOnly) fs.utimesSync(self, time, time);
      else fs.futimesSync(d.fd, time, time);
      if (needsTimeCheck(node)) this.checkTime(node, fs.fstatSync(d.fd, { bigint: true }).mtimeNs, d.shown);
    } catch (e) {
      this.warn(errnoCode(e) ?? 'SNAP_IO', d.shown, `metadata not restored: ${(e as Error).message}`);
    }
  }

  /**
   * The one place restore sets extended attributes (POSIX ACLs among them): on `p`, the entry as
   * it now stands, named through its directory's descriptor (xattr-apply.ts). A file already in
   * place with a mode that denies its owner writing gets write permission for the moment of
   * setting, as a user who is not root needs it for user.* attributes (root does not).
   */
  private restoreXattrs(node: Node, p: Buffer, shown: Buffer): void {
    if (!node.xattrs || node.xattrs.length === 0 || this.o.dryRun) return;
    if (!this.xattr) {
      if (!this.xattrMissingSaid) this.warn('SNAP_XATTR', shown, `extended attributes and ACLs are not restored (here nor for other files): ${xattrUnavailable()}`);
      this.xattrMissingSaid = true;
      return;
    }
    const lend = !this.o.asRoot && node.type === 'file' && (node.mode & 0o200) === 0;
    const fd = lend ? fs.openSync(p, O_PATH | fs.constants.O_NOFOLLOW) : -1;
    try {
      if (lend) fs.chmodSync(fdPath(fd).toString(), node.mode | 0o200);
      for (const prob of applyXattrs(this.xattr, p, node.xattrs)) this.warn(prob.code, shown, prob.message);
    } finally {
      if (lend) {
        fs.chmodSync(fdPath(fd).toString(), node.mode);
        fs.closeSync(fd);
      }
    }
  }
}

/** Takes a quick file's answer from the writer threads (Restorer.quick). */
class QuickFile implements Pending {
  constructor(
    private readonly r: Restorer,
    readonly node: Node,
    readonly shown: Buffer,
    readonly dir: DirState,
    /** The pack whose spooled copy the thread reads the object from (settled once answered). */
    readonly spooled: string | undefined,
  ) {}

  resolve(a: Answer): void {
    this.r.quickAnswered(this, a, undefined);
  }

  reject(e: Error): void {
    this.r.quickAnswered(this, undefined, e);
  }
}

/** A blob's index entry, or the error of one missing or of another type (the id said only then). */
function checkedBlob(id: Buffer, loc: ObjectLocation | undefined): ObjectLocation {
  if (!loc) throw new SnapError('SNAP_MISSING_OBJECT', `object ${toHex(id).slice(0, 16)} is not in the repository index`);
  if (loc.type !== 'blob') throw new SnapError('SNAP_CORRUPT', `object ${toHex(id).slice(0, 16)} is a ${loc.type}, expected a blob`);
  return loc;
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

function sameType(n: Node, st: fs.Stats): boolean {
  if (n.type === 'symlink') return st.isSymbolicLink();
  if (n.type === 'fifo') return st.isFIFO();
  if (n.type === 'chardev') return st.isCharacterDevice();
  if (n.type === 'blockdev') return st.isBlockDevice();
  return false;
}

function describeType(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isFile()) return 'a file';
  if (st.isDirectory()) return 'a directory';
  return 'another kind of entry';
}
