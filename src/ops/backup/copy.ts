// `snap copy`: snapshots from one repository into another, any backend to any backend (the 3-2-1
// recipe of docs/remote.md: a local repository copied to S3). Write order as for a backup:
// objects, their index entries, then the snapshot record (saveSnapshot flushes and syncs first),
// so a copy stopped anywhere leaves the destination `check`-clean.
//
// Two ways, chosen by how the two repositories compute object ids:
//
// - Both plain (ids are SHA-256 of the content in both): objects the destination lacks are read
//   through the source's decode-and-verify path and stored with the same id, and the snapshot
//   record is the source's record unchanged (same id).
// - Either one encrypted (ids are HMAC-SHA256 under each repository's own id key, docs/format.md
//   "Format 2"): every object is re-identified. A chunk is read and verified in the source, its id
//   computed with the destination's id function, and stored unless the destination has it; trees
//   are rewritten bottom-up with their children's new ids (written entry by entry from a view of
//   the source tree, in the canonical encoding; never all entries as objects: see Frame), then
//   the record, which names the source snapshot in `original` (so a second copy recognises
//   it). To avoid reading every chunk again for each later snapshot, a snapshot is rewritten next
//   to a reference pair: an earlier source snapshot of the same host and paths and its copy in the
//   destination. A subtree the two source snapshots share maps to the reference copy's subtree,
//   and a chunk of a file of the same path to the chunk at the same place in the reference copy's
//   file (checked: the destination has it, of the same size), so a daily `copy latest` reads only
//   what changed, as a backup does with its parent. Beyond that, a bounded cache of old -> new ids
//   (RECENT_IDS) catches repeats within a run; memory stays bounded whatever the repository's size.
//
// Re-chunking: when the destination cuts chunks otherwise than the source (other chunker sizes
// or another gear seed: every encrypted repository keeps its own secret seed), files are cut
// again as the destination's backups cut them, so a copy deduplicates with them and an encrypted
// destination holds no chunk boundaries made with another repository's (perhaps public) seed. A
// file's content is streamed from its source chunks (read and verified in order, a few ahead)
// through the destination's chunker; a file whose source chunks are those of the same file in the
// reference copy takes that copy's chunks (checked: the destination has them, of the file's size),
// so later copies read only files that changed. Memory: the chunker's window (two of its largest
// chunks) and the chunks read ahead, for each of RECHUNK_FILES files at once. `snap init
// --copy-chunker-params-from` makes a plain destination that cuts as the source does: then
// nothing is re-chunked.
import { SnapError } from '../../core/errors.js';
import { sha256, toHex } from '../../core/ids.js';
import type { ProgressSink } from '../../core/progress.js';
import type { Node } from '../../model/node.js';
import type { Snapshot, StoredSnapshot } from '../../model/snapshot.js';
import { type Tree, TreeWriter, openTree } from '../../model/tree.js';
import { sameGear } from '../../store/chunker.js';
import { chunkWindow, streamChunks } from '../../store/stream-chunker.js';
import type { ObjectType, Repository } from '../../repo/repository.js';
import { IdSet } from '../../repo/reachability.js';
import { TaskPool } from '../../core/pool.js';

export interface CopyOptions {
  sink: ProgressSink;
  signal?: AbortSignal;
  /** Objects read from the source at once (each a ranged read on remote storage). */
  concurrency?: number;
  /**
   * Every snapshot of the source (not only those to copy): earlier ones that the destination holds
   * copies of serve as references, so a keyed copy reads only what changed. Default: `snaps`.
   */
  sourceSnapshots?: StoredSnapshot[];
}

export interface CopyResult {
  copied: { source: string; id: string }[];
  /** Snapshots the destination held already. */
  skipped: string[];
  objectsCopied: number;
  objectsPresent: number;
  bytesCopied: number;
  /** File content chunks read from the source (a keyed copy reads only those it cannot pair with an earlier copy). */
  chunksRead: number;
  /** Whether objects were given new ids (either repository encrypted, or files re-chunked). */
  reidentified: boolean;
  /** Whether files were cut again with the destination's chunker (its parameters differ from the source's). */
  rechunked: boolean;
}

type Dest = Pick<Repository, 'objects' | 'listSnapshots' | 'saveSnapshot' | 'readTree' | 'hashId' | 'encrypted' | 'gear'>;
type Source = Pick<Repository, 'objects' | 'readTree' | 'encrypted' | 'gear'>;

/** The id a snapshot keeps through replacements (`tag`, `rewrite`, `repair`) and keyed copies: its `original`, else its own. */
export function persistentId(s: StoredSnapshot): string {
  return s.original ? toHex(s.original) : s.id;
}

/** Whether two records describe the same backup (all but the ids they hold, which differ between keys). */
function sameBackup(a: Snapshot, b: Snapshot): boolean {
  const eq = (x: string[], y: string[]): boolean => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.time === b.time && a.hostname === b.hostname && a.username === b.username && eq(a.paths, b.paths) && eq(a.tags, b.tags) && eq(a.excludes, b.excludes);
}

/** The destination's snapshots by the ids that may name a source snapshot: their own and their `original`. */
class CopiesIndex {
  private readonly by = new Map<string, StoredSnapshot[]>();

  constructor(snaps: StoredSnapshot[]) {
    for (const s of snaps) this.add(s);
  }

  add(s: StoredSnapshot): void {
    for (const k of new Set([s.id, persistentId(s)])) {
      const l = this.by.get(k);
      if (l) l.push(s);
      else this.by.set(k, [s]);
    }
  }

  /** The destination's copy of `src`: the same record, or one naming it (or what it replaced) in `original` with the same fields. */
  copyOf(src: StoredSnapshot): StoredSnapshot | undefined {
    const same = this.by.get(src.id)?.find((d) => d.id === src.id);
    if (same) return same;
    return this.by.get(persistentId(src))?.find((d) => sameBackup(d, src));
  }
}

export async function copySnapshots(src: Source, dst: Dest, snaps: StoredSnapshot[], o: CopyOptions): Promise<CopyResult> {
  const rechunked = !sameGear(src.gear, dst.gear);
  const reidentified = src.encrypted || dst.encrypted || rechunked;
  const r: CopyResult = { copied: [], skipped: [], objectsCopied: 0, objectsPresent: 0, bytesCopied: 0, chunksRead: 0, reidentified, rechunked };
  const copies = new CopiesIndex(await dst.listSnapshots());
  const limit = Math.max(1, o.concurrency ?? 8);
  const sourceAll = o.sourceSnapshots ?? snaps;
  const sourceById = new Map(sourceAll.map((x) => [x.id, x]));
  // Candidates for a reference pair, by host and paths (thousands of snapshots: no scan of all per snapshot).
  const series = new Map<string, StoredSnapshot[]>();
  for (const x of [...sourceAll].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))) {
    const k = seriesKey(x);
    const l = series.get(k);
    if (l) l.push(x);
    else series.set(k, [x]);
  }
  const run: CopyRun = { src, dst, r, limit, signal: o.signal, flushedAt: 0, rechunk: rechunked };
  const fast = reidentified ? undefined : new SameIdCopier(run);
  const keyed = reidentified ? new KeyedCopier(run) : undefined;

  for (const s of snaps) {
    o.signal?.throwIfAborted();
    if (copies.copyOf(s)) {
      r.skipped.push(s.id);
      continue;
    }
    let stored: StoredSnapshot;
    try {
      if (fast) {
        await fast.copyTree(s.tree);
        const { id: _id, ...record } = s;
        void _id;
        // Everything the record names is durable and indexed before the record is written.
        stored = await dst.saveSnapshot(record);
        if (stored.id !== s.id) o.sink.info?.(`snapshot ${s.id.slice(0, 8)} is ${stored.id.slice(0, 8)} in the destination (its record was re-encoded)`);
      } else {
        const ref = referenceFor(s, series.get(seriesKey(s)) ?? [], copies);
        const tree = await keyed!.tree(s.tree, ref && { src: ref.source.tree, dst: ref.copy.tree });
        const { id: _id, parent, ...rest } = s;
        void _id;
        const record: Snapshot = { ...rest, tree, original: s.original ?? Buffer.from(s.id, 'hex') };
        // The parent names a source record: kept only as the id of its copy, when there is one.
        const p = parent && sourceById.get(toHex(parent));
        const pCopy = p && copies.copyOf(p);
        if (pCopy) record.parent = Buffer.from(pCopy.id, 'hex');
        stored = await dst.saveSnapshot(record);
      }
    } catch (e) {
      // Stopped or failed: pack writes already under way finish, so none is cut off.
      await dst.objects.settle();
      throw e;
    }
    copies.add(stored);
    r.copied.push({ source: s.id, id: stored.id });
  }
  return r;
}

/** Snapshots of one host and set of paths are one series; a reference pair is found within it. */
function seriesKey(s: Snapshot): string {
  return JSON.stringify([s.hostname, s.paths]);
}

/**
 * In `series` (source snapshots of the same host and paths, oldest first), the nearest earlier one
 * the destination holds a copy of, else the nearest later one. Copying in time order, that is
 * the one copied just before: found in one step.
 */
function referenceFor(s: StoredSnapshot, series: StoredSnapshot[], copies: CopiesIndex): { source: StoredSnapshot; copy: StoredSnapshot } | undefined {
  const at = series.findIndex((x) => x.id === s.id);
  if (at < 0) return undefined;
  for (const step of [-1, 1]) {
    for (let i = at + step; i >= 0 && i < series.length; i += step) {
      const copy = copies.copyOf(series[i]!);
      if (copy) return { source: series[i]!, copy };
    }
  }
  return undefined;
}

/** What both ways of copying work with. */
interface CopyRun {
  src: Source;
  dst: Dest;
  r: CopyResult;
  /** Objects read at once. */
  limit: number;
  signal: AbortSignal | undefined;
  /** objectsCopied when the destination's packs were last flushed. */
  flushedAt: number;
  /** Cut files again with the destination's chunker. */
  rechunk: boolean;
}

/**
 * Objects copied between flushes of the destination's open packs. Without it, tiny objects (small
 * files) pile up in one open pack until it reaches packSize: 242,000 of them held 600 MB at the
 * pack's write (its entries and their index batch). A backup flushes as often (create.ts,
 * CACHE_BATCH), and what is flushed survives a stopped copy.
 */
const FLUSH_EVERY = 20_000;

/** Flush the destination's packs when FLUSH_EVERY objects were copied since the last time. */
async function flushNowAndThen(run: CopyRun): Promise<void> {
  if (run.r.objectsCopied - run.flushedAt < FLUSH_EVERY) return;
  run.flushedAt = run.r.objectsCopied;
  await run.dst.objects.flush();
}

/** Plain to plain: ids are the same in both repositories, so objects are copied as they are. */
class SameIdCopier {
  private readonly seenTrees = new IdSet();
  private readonly seenBlobs = new IdSet();

  constructor(private readonly run: CopyRun) {}

  /** Copy one object unless the destination has it; returns its bytes when it is a tree. */
  private async copyObject(id: Buffer, type: ObjectType): Promise<Buffer | undefined> {
    const { src, dst, r } = this.run;
    if (type === 'blob' && (await dst.objects.has(id))) {
      r.objectsPresent++;
      return undefined;
    }
    const present = type === 'tree' && (await dst.objects.has(id));
    const raw = await src.objects.get(id, type); // verified against its id by the source's reader
    if (type === 'blob') r.chunksRead++;
    if (present) {
      r.objectsPresent++;
      return raw;
    }
    if (!sha256(raw).equals(id)) throw new SnapError('SNAP_CORRUPT', `object ${toHex(id).slice(0, 16)} read from the source does not match its id; nothing more is copied`);
    await dst.objects.add(type, raw, id);
    r.objectsCopied++;
    r.bytesCopied += raw.length;
    return raw;
  }

  /** Every object under `root` the destination lacks, trees breadth-first, a bounded number in flight. */
  async copyTree(root: Buffer): Promise<void> {
    let queue: { id: Buffer; type: ObjectType }[] = [];
    if (this.seenTrees.add(root)) queue.push({ id: root, type: 'tree' });
    while (queue.length > 0) {
      const next: { id: Buffer; type: ObjectType }[] = [];
      for (let i = 0; i < queue.length; i += this.run.limit) {
        this.run.signal?.throwIfAborted();
        await flushNowAndThen(this.run);
        const batch = queue.slice(i, i + this.run.limit);
        const trees = await Promise.all(batch.map((q) => this.copyObject(q.id, q.type)));
        batch.forEach((q, k) => {
          if (q.type !== 'tree') return;
          const nodes = openTree(trees[k]!, `tree ${toHex(q.id).slice(0, 16)}`);
          for (const n of nodes) {
            if (n.type === 'dir' && n.tree) {
              if (this.seenTrees.add(n.tree)) next.push({ id: n.tree, type: 'tree' });
            } else if (n.type === 'file' && n.chunks) {
              for (const c of n.chunks) if (this.seenBlobs.add(c)) next.push({ id: c, type: 'blob' });
            }
          }
        });
      }
      queue = next;
    }
  }
}

/**
 * Old -> new ids remembered at most (trees and chunks). About 150 bytes each (two 32-character
 * keys and the Map's entry): 15 MB. The reference pair, not this cache, is what makes later
 * copies cheap; this catches repeats within a run (identical files and folders, snapshots copied
 * together).
 */
const RECENT_IDS = 100_000;

/** A bounded map of ids, the least recently used dropped first. */
class RecentIds {
  private readonly m = new Map<string, string>();

  get(id: Buffer): Buffer | undefined {
    const k = id.toString('latin1');
    const v = this.m.get(k);
    if (v === undefined) return undefined;
    this.m.delete(k);
    this.m.set(k, v);
    return Buffer.from(v, 'latin1');
  }

  set(id: Buffer, to: Buffer): void {
    const k = id.toString('latin1');
    this.m.delete(k);
    if (this.m.size >= RECENT_IDS) this.m.delete(this.m.keys().next().value!);
    this.m.set(k, to.toString('latin1'));
  }
}

/** Files re-chunked in a run that are remembered (about 100 bytes each, plus 32 per chunk). */
const RECENT_FILES = 20_000;

/** Files re-chunked at once: each holds the chunker's window (up to twice its largest chunk) and READ_AHEAD chunks. */
const RECHUNK_FILES = 2;

/** Source chunks of a file being re-chunked read ahead of the chunker. */
const READ_AHEAD = 4;

/** A bounded map of a file's source chunks (their digest) to its chunks in the destination, the least recently used dropped first. */
class RecentFiles {
  private readonly m = new Map<string, Buffer[]>();

  get(key: Buffer): Buffer[] | undefined {
    const k = key.toString('latin1');
    const v = this.m.get(k);
    if (v === undefined) return undefined;
    this.m.delete(k);
    this.m.set(k, v);
    return v;
  }

  set(key: Buffer, to: Buffer[]): void {
    const k = key.toString('latin1');
    this.m.delete(k);
    if (this.m.size >= RECENT_FILES) this.m.delete(this.m.keys().next().value!);
    this.m.set(k, to);
  }
}

function sameIds(a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}

/** Two trees in the same place: the earlier source snapshot's and its copy's. */
interface TreePair {
  src: Buffer;
  dst: Buffer;
}

/** The entries of a reference pair's trees, equal in shape (names, types, chunk counts). */
interface RefEntries {
  src: Tree;
  dst: Tree;
}

/**
 * A source tree being rewritten, in two passes over its view (issue 20: a tree's entries are never
 * all held as objects; a tree at the cap of 1,000,000 entries took ~700 MB that way). First its
 * subdirectories are rewritten, in order, their new ids kept (32 bytes each); then the entries are
 * read again SEGMENT at a time, their files given new chunks, and written one by one (TreeWriter)
 * with the subdirectories' new ids. A frame holds its view (the tree's bytes and 4 per entry) and
 * those ids; only the frame being written holds decoded entries, SEGMENT of them.
 */
interface Frame {
  srcId: Buffer;
  tree: Tree;
  ref: RefEntries | undefined;
  /** The next entry to look at in the first pass. */
  i: number;
  /** The new ids of the subdirectories before entry `i`, in order. */
  dirIds: IdList;
}

/** Entries of a tree given new chunk ids together (decoded: about 700 bytes each). */
const SEGMENT = 1024;

/** Ids of 32 bytes, in order, in one buffer (not an object each). */
class IdList {
  private buf = Buffer.allocUnsafe(32 * 16);
  private n = 0;

  push(id: Buffer): void {
    if (id.length !== 32) throw new RangeError(`an id of ${id.length} bytes`);
    if ((this.n + 1) * 32 > this.buf.length) {
      const next = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(next, 0, 0, this.n * 32);
      this.buf = next;
    }
    id.copy(this.buf, this.n * 32);
    this.n++;
  }

  /** Id `k` (a view: copy it to keep it). */
  at(k: number): Buffer {
    if (!(k >= 0 && k < this.n)) throw new RangeError(`id ${k} of ${this.n}`);
    return this.buf.subarray(k * 32, k * 32 + 32);
  }
}

/** Either repository encrypted: every object gets the destination's id, trees are rewritten. */
class KeyedCopier {
  private readonly recent = new RecentIds();
  /** Re-chunked files of this run: the source chunk list's digest -> the destination's chunks. */
  private readonly recentFiles = new RecentFiles();
  /** Chunks being read and stored now, by source id: read once even when named twice. */
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  /** The re-chunking chunker's windows not in use (at most RECHUNK_FILES are made). */
  private readonly windows: Buffer[] = [];

  constructor(private readonly run: CopyRun) {}

  /** The destination's id of the source tree `root` (and everything under it stored there). */
  async tree(root: Buffer, ref: TreePair | undefined): Promise<Buffer> {
    const first = await this.open(root, ref);
    if (!isFrame(first)) return first;
    // An explicit stack (trees may nest thousands deep), children before their parent.
    const stack: Frame[] = [first];
    for (;;) {
      const f = stack[stack.length - 1]!;
      this.run.signal?.throwIfAborted();
      await flushNowAndThen(this.run);
      while (f.i < f.tree.length) {
        const n = f.tree.at(f.i);
        if (n.type === 'dir' && n.tree) break;
        f.i++;
      }
      if (f.i < f.tree.length) {
        const n = f.tree.at(f.i);
        const child = await this.open(n.tree!, childPair(f.ref, n));
        if (!isFrame(child)) {
          f.dirIds.push(child);
          f.i++;
        } else stack.push(child);
        continue;
      }
      const id = await this.store(f);
      stack.pop();
      const parent = stack[stack.length - 1];
      if (!parent) return id;
      parent.dirIds.push(id);
      parent.i++;
    }
  }

  /** The tree's new id when it is known already, else a frame to rewrite it. */
  private async open(id: Buffer, ref: TreePair | undefined): Promise<Buffer | Frame> {
    const known = this.recent.get(id);
    if (known) return known;
    if (ref && ref.src.equals(id) && (this.run.rechunk ? (await this.refEntries(ref)) !== undefined : await this.sameObject(id, ref.dst))) {
      this.recent.set(id, ref.dst);
      this.run.r.objectsPresent++;
      return ref.dst;
    }
    const tree = await this.run.src.readTree(id);
    const refEntries = ref ? await this.refEntries(ref) : undefined;
    return { srcId: id, tree, ref: refEntries, i: tree.hasDirs ? 0 : tree.length, dirIds: new IdList() };
  }

  /** The reference trees' entries, when they have the same shape (a copy made by snap copy has). */
  private async refEntries(ref: TreePair): Promise<RefEntries | undefined> {
    const [a, b] = await Promise.all([this.run.src.readTree(ref.src), this.run.dst.readTree(ref.dst).catch(() => undefined)]);
    if (!b || a.length !== b.length) return undefined;
    for (let i = 0; i < a.length; i++) {
      const x = a.at(i);
      const y = b.at(i);
      // Re-chunked files have other chunk counts than their source; otherwise a copy has the same.
      const chunksDiffer = !this.run.rechunk && (x.chunks?.length ?? 0) !== (y.chunks?.length ?? 0);
      if (!x.name.equals(y.name) || x.type !== y.type || chunksDiffer || x.size !== y.size) return undefined;
    }
    return { src: a, dst: b };
  }

  /** Whether the destination holds `dstId` with the raw size of the source's `srcId` (the pairing's check). */
  private async sameObject(srcId: Buffer, dstId: Buffer): Promise<boolean> {
    const [a, b] = await Promise.all([this.run.src.objects.rawLength(srcId), this.run.dst.objects.rawLength(dstId)]);
    return a !== undefined && a === b;
  }

  /** Give every file of `nodes` its chunks' new ids: from the reference, the cache, or read and stored. */
  private async mapChunks(nodes: Node[], ref: RefEntries | undefined): Promise<void> {
    if (this.run.rechunk) return this.rechunkFiles(nodes, ref);
    const pool = new TaskPool(this.run.limit);
    try {
      for (let k = 0; k < nodes.length; k++) {
        const n = nodes[k]!;
        if (n.type !== 'file' || !n.chunks || n.chunks.length === 0) continue;
        const chunks = n.chunks.slice();
        nodes[k] = { ...n, chunks };
        const refAt = ref ? ref.src.indexOf(n.name) : -1;
        const refSrc = refAt >= 0 ? ref!.src.at(refAt) : undefined;
        const refPairs = refSrc?.type === 'file' ? pairsOf(refSrc.chunks!, ref!.dst.at(refAt).chunks!) : undefined;
        for (let j = 0; j < chunks.length; j++) {
          const c = chunks[j]!;
          const known = this.recent.get(c);
          if (known) {
            chunks[j] = known;
            continue;
          }
          const cand = refPairs?.get(c.toString('latin1'));
          if (cand && (await this.sameObject(c, cand))) {
            this.recent.set(c, cand);
            this.run.r.objectsPresent++;
            chunks[j] = cand;
            continue;
          }
          await pool.run(async () => {
            chunks[j] = await this.chunk(c);
          });
        }
      }
    } finally {
      await pool.drain();
    }
  }

  /** Cut every file of `nodes` again with the destination's chunker (see the top of this file). */
  private async rechunkFiles(nodes: Node[], ref: RefEntries | undefined): Promise<void> {
    const pool = new TaskPool(RECHUNK_FILES);
    try {
      for (let k = 0; k < nodes.length; k++) {
        const n = nodes[k]!;
        if (n.type !== 'file' || !n.chunks || n.chunks.length === 0) continue;
        const refAt = ref ? ref.src.indexOf(n.name) : -1;
        const refSrc = refAt >= 0 ? ref!.src.at(refAt) : undefined;
        const refFile = refSrc?.type === 'file' ? { src: refSrc, dst: ref!.dst.at(refAt) } : undefined;
        await pool.run(async () => {
          // One chunker window per file cut at once, kept for the next files (streamChunks).
          const window = this.windows.pop() ?? chunkWindow(this.run.dst.gear);
          try {
            nodes[k] = { ...n, chunks: await this.rechunkFile(n, refFile, window) };
          } finally {
            this.windows.push(window);
          }
        });
      }
    } finally {
      await pool.drain();
    }
  }

  /** The destination's chunks of file `n`: known from this run, taken from the reference copy, or cut anew. */
  private async rechunkFile(n: Node, ref: { src: Node; dst: Node } | undefined, window: Buffer): Promise<Buffer[]> {
    const { src, dst, r } = this.run;
    const chunks = n.chunks!;
    const key = sha256(Buffer.concat(chunks));
    const known = this.recentFiles.get(key);
    if (known) return known;
    if (ref && ref.src.size === n.size && ref.dst.chunks && sameIds(ref.src.chunks ?? [], chunks)) {
      const sizes = await Promise.all(ref.dst.chunks.map((c) => dst.objects.rawLength(c)));
      if (sizes.every((x) => x !== undefined) && sizes.reduce((a, b) => a + b!, 0) === n.size) {
        r.objectsPresent += ref.dst.chunks.length;
        this.recentFiles.set(key, ref.dst.chunks);
        return ref.dst.chunks;
      }
    }
    const signal = this.run.signal;
    // The source chunks in order, READ_AHEAD of them read (and verified) at once.
    async function* content(): AsyncGenerator<Buffer> {
      const ahead: Promise<Buffer>[] = [];
      let next = 0;
      const fill = (): void => {
        while (ahead.length < READ_AHEAD && next < chunks.length) ahead.push(src.objects.get(chunks[next++]!, 'blob'));
      };
      try {
        fill();
        while (ahead.length > 0) {
          signal?.throwIfAborted();
          const raw = await ahead.shift()!;
          r.chunksRead++;
          fill();
          yield raw;
        }
      } finally {
        // Reads still under way are waited for (their errors are this file's error, given above).
        await Promise.allSettled(ahead);
      }
    }
    const total = { bytes: 0 };
    const out: Buffer[] = [];
    for await (const raw of streamChunks(dst.gear, content(), total, window)) {
      // A view of the window, valid until the next chunk: add() has copied what it keeps when it resolves.
      const id = dst.hashId(raw);
      if ((await dst.objects.add('blob', raw, id)).added) {
        r.objectsCopied++;
        r.bytesCopied += raw.length;
      } else r.objectsPresent++;
      out.push(id);
    }
    if (total.bytes !== n.size) {
      throw new SnapError('SNAP_CORRUPT', `a file of ${n.size} bytes has chunks of ${total.bytes} bytes in the source (snap check names it); nothing more is copied`);
    }
    this.recentFiles.set(key, out);
    return out;
  }

  /** Read a chunk through the source's decode-and-verify path, store it under the destination's id. */
  private chunk(c: Buffer): Promise<Buffer> {
    const k = c.toString('latin1');
    let p = this.inFlight.get(k);
    if (!p) {
      p = (async () => {
        this.run.signal?.throwIfAborted();
        const raw = await this.run.src.objects.get(c, 'blob');
        this.run.r.chunksRead++;
        const id = this.run.dst.hashId(raw);
        if ((await this.run.dst.objects.add('blob', raw, id)).added) {
          this.run.r.objectsCopied++;
          this.run.r.bytesCopied += raw.length;
        } else this.run.r.objectsPresent++;
        this.recent.set(c, id);
        return id;
      })().finally(() => this.inFlight.delete(k));
      this.inFlight.set(k, p);
    }
    return p;
  }

  /**
   * The second pass (see Frame): the tree's entries with new chunks and subtrees, encoded as they
   * come (canonical CBOR, docs/format.md), stored under the destination's id.
   */
  private async store(f: Frame): Promise<Buffer> {
    const t = f.tree;
    const out = new TreeWriter(t.length, t.encodedLength);
    let dirs = 0;
    for (let from = 0; from < t.length; from += SEGMENT) {
      this.run.signal?.throwIfAborted();
      await flushNowAndThen(this.run);
      const nodes: Node[] = [];
      for (let i = from; i < t.length && i < from + SEGMENT; i++) nodes.push(t.at(i));
      await this.mapChunks(nodes, f.ref);
      for (const n of nodes) out.add(n.type === 'dir' && n.tree ? { ...n, tree: f.dirIds.at(dirs++) } : n);
    }
    const bytes = out.finish();
    const id = this.run.dst.hashId(bytes);
    if ((await this.run.dst.objects.add('tree', bytes, id)).added) {
      this.run.r.objectsCopied++;
      this.run.r.bytesCopied += bytes.length;
    } else this.run.r.objectsPresent++;
    this.recent.set(f.srcId, id);
    return id;
  }
}

/** The reference pair of a directory entry, when the reference has a directory of that name. */
function childPair(ref: RefEntries | undefined, n: Node): TreePair | undefined {
  if (!ref) return undefined;
  const at = ref.src.indexOf(n.name);
  const src = at < 0 ? undefined : ref.src.at(at);
  if (!src || src.type !== 'dir') return undefined;
  const a = src.tree;
  const b = ref.dst.at(at).tree;
  return a && b ? { src: a, dst: b } : undefined;
}

/** A chunk of the reference's source file -> the chunk at the same place in its copy. */
function pairsOf(src: Buffer[], dst: Buffer[]): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (let i = 0; i < src.length && i < dst.length; i++) m.set(src[i]!.toString('latin1'), dst[i]!);
  return m;
}

function isFrame(x: Buffer | Frame): x is Frame {
  return !Buffer.isBuffer(x);
}
