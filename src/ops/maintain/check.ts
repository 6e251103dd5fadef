// `snap check`: prove the repository intact or say exactly what is damaged. Every problem is
// reported (streamed through `onProblem`), never just the first. Structure: snapshot records
// decode; every reachable tree reads, verifies and decodes; every object a tree names is in the
// index, of the right type, in a pack that storage holds; index and storage agree on packs.
// With read-data: every selected pack's own hash and every object in it are verified. Finally,
// for every damaged or missing object, which snapshots and which paths in them are affected.
// The index files are checked in check-index-files.ts.
import { toHex } from '../../core/ids.js';
import type { Node } from '../../model/node.js';
import { displayName } from '../../core/bytes.js';
import { isSnapError } from '../../core/errors.js';
import type { ProgressSink } from '../../core/progress.js';
import type { ObjectLocation, ObjectTable, Repository } from '../../repo/repository.js';
import { type BlobKeys, entriesOfHeader, MAX_KEPT_PACK_BYTES, PackVerifier, type PackVerdict, readPackForCheck, readPackTable } from '../../repo/maintenance.js';
import { inSubset, type Subset } from './check-subset.js';
import { findAffected, type Affected } from './check-affected.js';
import { checkLog } from '../../repo/oplog-check.js';
import { checkIndexFiles, entriesDigest, type IndexFilesRead, type ReadHeader, readIndexFiles } from './check-index-files.js';
import { errorMessage, isMarked, listPacks, newMarks, readSnapshotRecords, walkTrees } from '../../repo/reachability.js';

export type ProblemKind =
  | 'snapshot-damaged'
  | 'tree-damaged'
  | 'object-missing'
  | 'object-unindexed'
  | 'object-type'
  | 'object-damaged'
  | 'file-size'
  | 'pack-missing'
  | 'pack-size'
  | 'pack-damaged'
  | 'index-mismatch'
  | 'log-damaged'
  | 'index-file-damaged';

export interface CheckProblem {
  kind: ProblemKind;
  message: string;
  pack?: string;
  object?: string;
  snapshot?: string;
  /** For 'log-damaged': the record's blob name (`log/...`). */
  log?: string;
  /** For 'index-file-damaged': the index file's blob name (`packindex/...`). */
  indexFile?: string;
}

/** Not damage: what an interrupted write or gc leaves behind, and what the next gc removes. */
export type Leftover =
  | { kind: 'pack-unindexed'; pack: string; size: number; message: string }
  /** An index file that cannot be read while intact ones list every pack: it hides nothing. */
  | { kind: 'index-file-unneeded'; indexFile: string; message: string };

export interface CheckReport {
  snapshots: number;
  trees: number;
  blobs: number;
  packs: number;
  packsRead: number;
  bytesRead: number;
  /** Indexed objects no snapshot uses (gc removes them) and their stored bytes. */
  unusedObjects: number;
  unusedBytes: number;
  problems: CheckProblem[];
  leftovers: Leftover[];
  affected: Affected[];
  /** Ids (hex) of the objects snapshots use that are missing, unreadable or damaged. */
  damagedObjects: Set<string>;
  /** The repository's index files read, and packs in storage that none of them lists (not damage). */
  indexFiles: number;
  packsWithoutIndexFile: number;
}

export interface CheckOptions {
  readData?: Subset;
  sink: ProgressSink;
  onProblem?(p: CheckProblem): void;
  /** Paths listed per affected snapshot (the count is always exact). */
  maxPaths?: number;
  /** Stops the check (Ctrl-C): its reason is thrown. */
  signal?: AbortSignal;
  /** Threads verifying packs for read-data (default: store/verify-pool.ts defaultVerifyThreads). */
  verifyThreads?: number;
}

/** With read-data, the walk lets completed reads through at least this often (ms). */
const YIELD_MS = 5;

export async function checkRepository(repo: Repository, o: CheckOptions): Promise<CheckReport> {
  const r: CheckReport = {
    snapshots: 0, trees: 0, blobs: 0, packs: 0, packsRead: 0, bytesRead: 0, unusedObjects: 0, unusedBytes: 0,
    problems: [], leftovers: [], affected: [], damagedObjects: new Set(), indexFiles: 0, packsWithoutIndexFile: 0,
  };
  const problem = (p: CheckProblem): void => {
    r.problems.push(p);
    o.onProblem?.(p);
  };
  /** Damaged or missing objects (hex) that snapshots may use: the input of the affected-paths walk. */
  const bad = r.damagedObjects;

  // Read in the order backups write (pack, its index entries, snapshot record), reversed: a backup
  // running meanwhile (shared lock) then never makes a record name a pack not yet seen in storage.
  // Snapshot records, from storage.
  const recs = await readSnapshotRecords(repo);
  r.snapshots = recs.snapshots.length;

  // Packs: index against storage.
  const indexed = new Map<string, number>();
  for await (const p of repo.index.packs()) indexed.set(p.id, p.size);
  const stored = await listPacks(repo);
  r.packs = stored.size;
  const missingPackUse = new Map<string, number>();
  for (const [id, size] of indexed) {
    const actual = stored.get(id);
    if (actual === undefined) missingPackUse.set(id, 0);
    else if (actual !== size) problem({ kind: 'pack-size', pack: id, message: `pack ${id.slice(0, 12)} has ${actual} bytes in storage, the index says ${size}` });
  }
  for (const d of recs.damaged) {
    problem({ kind: 'snapshot-damaged', snapshot: d.id, message: `snapshot record ${d.id.slice(0, 8)} is damaged: ${errorMessage(d.error)}` });
  }

  // With read-data, packs are read and verified on threads from now on, while this thread walks
  // the trees (the walk needs no pack bytes but the trees'). Should the walk fail, the reading
  // is stopped and the check ends only once it has (no thread is left busy).
  const headers = new Map<string, ReadHeader>();
  const stopReading = new AbortController();
  // Every object's location, read once (index/object-table.ts): the walk, the packs' headers and
  // the index files look up every object, and a LevelDB read each was most of the walk's time.
  // Read after the snapshot records: every object they name was indexed before they were written.
  const tableReady = repo.index.objectTable();
  tableReady.catch(() => {}); // awaited below
  const reading = o.readData
    ? readData(repo, o.readData, stored, indexed, r, problem, bad, headers, tableReady, o.sink, o.signal ? AbortSignal.any([o.signal, stopReading.signal]) : stopReading.signal, o.verifyThreads)
    : undefined;
  reading?.catch(() => {}); // awaited below
  // Files whose chunks do not add up to their recorded size (restore refuses them): `tree/name` in hex.
  const badFiles = new Set<string>();
  let indexFilesRead: IndexFilesRead | undefined;
  try {
    // Trees and the objects they name.
    o.sink.info?.(`checking the trees of ${recs.snapshots.length} snapshot(s)`);
    const marks = newMarks();
    const notIndexed: Buffer[] = [];
    // The locations the file-size check just read for a file's chunks, by its entry: the walk hands
    // the file's new chunks to `blob` with that entry right after it, so each is read from the index
    // once, not twice. (A map by hex id, evicting the oldest, cost 113 ms of self time in a check of
    // the bench repository: a Map's oldest key is found by stepping over every entry deleted before it.)
    const fileLocs = new WeakMap<Node, (ObjectLocation | undefined)[]>();
    const table = await tableReady;
    const locate = async (id: Buffer, type: 'blob' | 'tree', known?: { loc: ObjectLocation | undefined }): Promise<boolean> => {
      let loc;
      try {
        loc = known ? known.loc : table.find(id);
      } catch (e) {
        // A location claiming an impossible size (store/limits.ts) is damage: reported, not fatal.
        if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
        const hex = toHex(id);
        if (!bad.has(hex)) problem({ kind: 'object-damaged', object: hex, message: errorMessage(e) });
        bad.add(hex);
        return false;
      }
      if (loc && loc.type === type && stored.has(loc.pack)) return true;
      // Named in hex only here: locate runs for every chunk (a hex id each cost tens of ms of a check).
      const hex = toHex(id);
      if (!loc) notIndexed.push(id);
      else if (loc.type !== type) {
        problem({ kind: 'object-type', object: hex, pack: loc.pack, message: `object ${hex.slice(0, 16)} is used as a ${type} but stored as a ${loc.type}` });
      } else missingPackUse.set(loc.pack, (missingPackUse.get(loc.pack) ?? 0) + 1);
      bad.add(hex);
      return false;
    };
    // The walk's index lookups answer at once (LevelDB reads on this thread), so it would run for
    // seconds without visiting the event loop, where the packs' reads complete and go to the
    // verifying threads: with read-data, it lets them through every few milliseconds.
    let visited = performance.now();
    const letReadsThrough = async (): Promise<void> => {
      const now = performance.now();
      if (now - visited < YIELD_MS) return;
      await new Promise<void>((r) => setImmediate(r));
      visited = performance.now();
    };
    await walkTrees(repo, recs.snapshots.map((s) => s.tree), marks, {
      signal: o.signal,
      blob: async (id, file, i) => {
        const locs = fileLocs.get(file);
        await locate(id, 'blob', locs && i < locs.length ? { loc: locs[i] } : undefined);
      },
      entry: async (id, n) => {
        if (n.type !== 'file') return;
        if (reading) await letReadsThrough();
        let sum = 0;
        const locs: (ObjectLocation | undefined)[] = [];
        fileLocs.set(n, locs);
        for (const c of n.chunks ?? []) {
          let loc;
          try {
            loc = table.find(c);
          } catch {
            sum = -1; // reported by locate, which reads it again
            break;
          }
          locs.push(loc);
          if (loc?.type !== 'blob') {
            sum = -1; // a missing chunk or one of another type: reported as such
            break;
          }
          sum += loc.rawLength;
        }
        if (sum < 0 || sum === n.size) return;
        const hex = toHex(id);
        badFiles.add(`${hex}/${n.name.toString('hex')}`);
        problem({ kind: 'file-size', object: hex, message: `file "${displayName(n.name)}" in tree ${hex.slice(0, 16)} records ${n.size} bytes but its chunks hold ${sum}: restore refuses it` });
      },
      treeError: async (id, e) => {
        if (!(await locate(id, 'tree'))) return; // reported with the pack or the index below
        const hex = toHex(id);
        bad.add(hex);
        problem({ kind: 'tree-damaged', object: hex, message: `tree ${hex.slice(0, 16)} is damaged: ${errorMessage(e)}` });
      },
    });
    r.trees = marks.trees.size;
    r.blobs = marks.blobs.size;

    for (const [id, used] of missingPackUse) {
      problem({ kind: 'pack-missing', pack: id, message: `pack ${id.slice(0, 12)} is in the index but missing from storage${used ? ` (${used} object(s) that snapshots use)` : ''}` });
    }
    const unindexed = [...stored.keys()].filter((id) => !indexed.has(id)).sort();
    const supplying = await resolveNotIndexed(repo, notIndexed, unindexed, problem);
    for (const id of unindexed) {
      if (supplying.has(id)) continue;
      const size = stored.get(id)!;
      r.leftovers.push({ kind: 'pack-unindexed', pack: id, size, message: `pack ${id.slice(0, 12)} (${size} bytes) is not in the index and nothing needs it: a leftover that 'snap gc' removes, or a pack a backup running now is writing` });
    }

    // Indexed objects nothing uses (gc removes them).
    for (const [id, loc] of table.entries()) {
      if (!isMarked(marks, id)) {
        r.unusedObjects++;
        r.unusedBytes += loc.length;
      }
    }

    // With read-data, the index files are read and held against storage and the index while the
    // last packs are verified (against those packs' headers below).
    if (reading) indexFilesRead = await readIndexFiles(repo, stored, true, o.signal, letReadsThrough, (id) => table.find(id));

    // The packs read whole (and the headers of those found intact, to hold the index files against).
    await reading;
  } catch (e) {
    stopReading.abort(e);
    await reading?.catch(() => {});
    throw e;
  }

  await checkIndexFiles(repo, stored, headers, r, problem, o.signal, indexFilesRead);

  // The operation log (docs/format.md): every record must parse; it holds no backup data.
  for (const d of (await checkLog(repo, o.signal)).damaged) problem({ kind: 'log-damaged', log: d.name, message: d.message });

  if (bad.size > 0 || badFiles.size > 0) r.affected = await findAffected(repo, recs.snapshots, bad, o.maxPaths ?? 1000, badFiles);
  return r;
}

/** Objects snapshots use that the index lacks: in an unindexed pack (index rebuild fixes it) or nowhere. */
async function resolveNotIndexed(repo: Repository, ids: Buffer[], unindexed: string[], problem: (p: CheckProblem) => void): Promise<Set<string>> {
  const supplying = new Set<string>();
  if (ids.length === 0) return supplying;
  const where = new Map<string, string>();
  const wanted = new Set(ids.map(toHex));
  for (const pack of unindexed) {
    try {
      for (const e of await readPackTable(repo, pack)) {
        const hex = toHex(e.id);
        if (wanted.has(hex) && !where.has(hex)) where.set(hex, pack);
      }
    } catch {
      // a damaged leftover: read-data reports nothing about unindexed packs; it cannot help
    }
  }
  for (const hex of wanted) {
    const pack = where.get(hex);
    if (pack) {
      supplying.add(pack);
      problem({ kind: 'object-unindexed', object: hex, pack, message: `object ${hex.slice(0, 16)} is in pack ${pack.slice(0, 12)}, which is not in the index: run 'snap index rebuild'` });
    } else {
      problem({ kind: 'object-missing', object: hex, message: `object ${hex.slice(0, 16)} is used by a snapshot but is not in the repository` });
    }
  }
  return supplying;
}

/** A pack as read and verified (on a check thread), or why it could not be read. */
type PackRead = { id: string; length: number; verdict: PackVerdict } | { id: string; error: unknown };

async function readData(
  repo: Repository, subset: Subset, stored: Map<string, number>, indexed: Map<string, number>, r: CheckReport,
  problem: (p: CheckProblem) => void, bad: Set<string>, headers: Map<string, ReadHeader>, tableReady: Promise<ObjectTable>, sink: ProgressSink, signal?: AbortSignal, threads?: number,
): Promise<void> {
  const packs = [...indexed.keys()].filter((id) => stored.has(id) && inSubset(id, subset)).sort();
  sink.info?.(`reading ${packs.length} pack(s)`);
  const headerless = new Set<string>();
  let done = 0;
  // Packs are verified on threads (store/verify-pool.ts). From a local repository each thread reads
  // the packs it verifies itself, into one buffer of its own, and two jobs wait per thread (a job
  // holds no memory until it runs): the thread goes from one pack to the next without waiting for
  // this thread, busy walking the trees, to read a pack and hand it over (which left the one thread
  // of a 2-core machine idle a fifth of the time). From remote storage the packs are read here
  // while the threads verify: at most `depth` packs are in memory at once. Their buffers are
  // reused, sized for the largest pack at once (the index knows every size): a new 16 MiB buffer
  // per pack left hundreds of MB of garbage that V8 collects late, and a buffer grown pack by pack
  // left each outgrown one behind.
  const verifier = new PackVerifier(repo.objects.ctx, threads, repo.threadReads());
  const depth = verifier.readsPacks ? 2 * verifier.threads : verifier.threads + 1;
  const size = Math.min(MAX_KEPT_PACK_BYTES, packs.reduce((m, id) => Math.max(m, indexed.get(id) ?? 0, stored.get(id) ?? 0), 0));
  const free: Buffer[] = [];
  const readOne = async (id: string): Promise<PackRead> => {
    if (verifier.readsPacks) {
      const v = await verifier.verifyStored(id);
      return 'error' in v ? { id, error: v.error } : { id, length: v.verdict.size, verdict: v.verdict };
    }
    const into = free.pop() ?? Buffer.allocUnsafeSlow(size);
    let bytes: Buffer;
    let keys: BlobKeys | undefined;
    try {
      // An encrypted pack comes sealed, with the keys that open it on the thread.
      ({ stored: bytes, keys } = await readPackForCheck(repo, id, into));
    } catch (error) {
      free.push(into);
      return { id, error };
    }
    // The verifier moves the buffer to a thread and back: only a buffer of this check's own goes
    // (a backend may hand out a view of memory it keeps).
    let own = into;
    if (bytes.buffer !== into.buffer || bytes.byteOffset !== 0) {
      if (bytes.length > into.length) {
        free.push(into);
        own = Buffer.allocUnsafeSlow(bytes.length);
      }
      bytes.copy(own);
    }
    const { verdict, buffer } = await verifier.verify(id, own, bytes.length, keys);
    if (buffer.length >= size) free.push(buffer);
    return { id, length: verdict.size, verdict };
  };
  const inFlight: Promise<PackRead>[] = [];
  let next = 0;
  const refill = (): void => {
    while (next < packs.length && inFlight.length < depth) {
      const p = readOne(packs[next++]!);
      p.catch(() => {}); // awaited in order below; a failure earlier in the queue must not leave this one unhandled
      inFlight.push(p);
    }
  };
  while (next < packs.length || inFlight.length > 0) {
    signal?.throwIfAborted();
    refill();
    const got = await inFlight.shift()!;
    refill();
    const id = got.id;
    if ('error' in got) {
      problem({ kind: 'pack-missing', pack: id, message: `pack ${id.slice(0, 12)} cannot be read: ${errorMessage(got.error)}` });
      headerless.add(id);
      continue;
    }
    r.packsRead++;
    r.bytesRead += got.length;
    sink.progress?.({ files: ++done, dirs: 0, bytes: r.bytesRead, current: `pack ${id.slice(0, 12)}` });
    const { intact, header, failures } = got.verdict;
    let entries, headerError = got.verdict.headerError;
    try {
      if (header) entries = entriesOfHeader(header.bytes, header.start, id);
    } catch (e) {
      headerError = errorMessage(e);
    }
    if (!intact) {
      problem({ kind: 'pack-damaged', pack: id, message: `pack ${id.slice(0, 12)} does not match its name (its content changed after it was written)` });
    }
    if (!entries) {
      problem({ kind: 'pack-damaged', pack: id, message: `pack ${id.slice(0, 12)}: ${headerError ?? 'its header cannot be read'}; every object the index places in it is lost` });
      headerless.add(id);
      continue;
    }
    // Only an intact pack's header is the truth index files are held against.
    if (intact) headers.set(id, { digest: entriesDigest(entries), entries: entries.length });
    const failed = new Map(failures.map((f) => [f.index, f.message]));
    const table = await tableReady;
    // Objects are named in hex only when reported (a hex id for every object cost tens of ms).
    for (const [index, e] of entries.entries()) {
      let loc;
      try {
        loc = table.find(e.id);
      } catch (err) {
        if (!isSnapError(err, 'SNAP_CORRUPT')) throw err;
        if (bad.has(toHex(e.id))) continue; // reported by the tree walk
        loc = undefined;
      }
      if (loc && loc.pack === id && (loc.offset !== e.offset || loc.length !== e.length || loc.codec !== e.codec || loc.rawLength !== e.rawLength)) {
        const hex = toHex(e.id);
        problem({ kind: 'index-mismatch', object: hex, pack: id, message: `the index entry of object ${hex.slice(0, 16)} disagrees with pack ${id.slice(0, 12)}: run 'snap index rebuild'` });
      }
      const why = failed.get(index);
      if (why === undefined) continue;
      // Damage in a copy the index does not point to is harmless: the object is elsewhere.
      if (loc && loc.pack !== id) continue;
      const hex = toHex(e.id);
      bad.add(hex);
      problem({ kind: 'object-damaged', object: hex, pack: id, message: why });
    }
  }
  if (headerless.size > 0) {
    for await (const [oid, loc] of repo.index.objects()) if (headerless.has(loc.pack)) bad.add(toHex(oid));
  }
}
