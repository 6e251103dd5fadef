// `snap gc`: plan, then execute (docs/maintenance.md). Mark every object reachable from the
// snapshot records in storage; decide per pack (gc-plan.ts); then, in an order that is safe to kill
// at any instant: clear the files cache; drop the index entries of packs nothing uses, then delete
// them (first: on a full disk their room is what the next step needs); write and index the new packs
// of those partly used, drop the old ones' index entries, and only then delete their files. A crash
// leaves at worst unindexed or unused packs, which the next gc removes; it never leaves an index
// entry or a snapshot pointing at a deleted pack. At the end, the repository's reserve for a full
// disk is written again when it is missing and there is room (repo/reserve.ts).
// The caller holds the exclusive repository lock: no backup can add a snapshot meanwhile.
import { SnapError, isSnapError } from '../../core/errors.js';
import { toHex } from '../../core/ids.js';
import type { ProgressSink } from '../../core/progress.js';
import type { Repository } from '../../repo/repository.js';
import { assertNoNewSnapshots, deletePack, packName, type PackEntry, readPackTable, removeTempFiles, storedPackSize } from '../../repo/maintenance.js';
import { decidePacks, type PackDecision, type PackUsage, type PlanTotals } from './gc-plan.js';
import { errorMessage, isMarked, listPacks, type Marks, markSnapshots, readSnapshotRecords } from '../../repo/reachability.js';
import { packRewriterFor } from '../../repo/pack-rewriter.js';

export interface GcOptions {
  /** Share (0..1) of a pack's bytes that may be unused before it is rewritten. */
  maxUnused: number;
  sink: ProgressSink;
  /** Temporary files younger than this are kept: they may belong to a write in progress. */
  tempMarginMs?: number;
  /** Called before each destructive step; throws when the exclusive lock is no longer held. */
  beforeDelete?: () => Promise<void>;
  /** Plan as if these snapshots were gone (`forget --dry-run --gc`); such a plan is not executable. */
  excludeSnapshots?: Set<string>;
  /**
   * Stops gc between steps (Ctrl-C). Every step is safe to stop after (the crash-safety order), so
   * a stopped gc leaves at worst leftovers that the next gc removes.
   */
  signal?: AbortSignal;
  /**
   * The caller holds the exclusive lock: no other process writes `data/` or `snapshots/`, so
   * temporary files there are leftovers of interrupted writes and go at once, however young.
   * (In `locks/`, another process may be writing its lock file this instant: the margin stays.)
   */
  exclusive?: boolean;
}

/** An interrupted write leaves `.tmp-*` files; older than this they are certainly abandoned. */
export const TEMP_MARGIN_MS = 60 * 60_000;

export interface GcPlan {
  snapshotIds: Set<string>;
  marks: Marks;
  decisions: PackDecision[];
  totals: PlanTotals;
  /** For packs to reindex: the entries the index lacks. */
  reindex: Map<string, PackEntry[]>;
  /** Bytes and count of pack files in storage, and object entries in the index, before gc. */
  sizeBefore: number;
  packsBefore: number;
  objectsBefore: number;
  maxUnused: number;
}

export interface GcResult {
  objectsFreed: number;
  /**
   * The reserve for a full disk after the gc (repo/reserve.ts): 'made' when it was missing and is
   * written again; 'unknown' on storage that cannot say its free space (object storage), which has none.
   */
  reserve?: 'there' | 'made' | 'no-room' | 'unknown';
  packsDeleted: number;
  packsRewritten: number;
  packsWritten: number;
  packsReindexed: number;
  bytesFreed: number;
  sizeBefore: number;
  sizeAfter: number;
  packsAfter: number;
  tempFilesRemoved: number;
  /** Files-cache entries (files and folders) dropped because they named an object that went. */
  filesCacheDropped?: number;
  /** Index files in the repository written and removed by the compaction (docs/format.md, "Index files"). */
  indexFilesWritten: number;
  indexFilesRemoved: number;
  /** Packs that were to be rewritten but hold damaged live objects: kept as they are. */
  damagedKept: string[];
}

function refuse(e: unknown, what: string): SnapError {
  const code = isSnapError(e) ? e.code : 'SNAP_CORRUPT';
  return new SnapError(code, `gc stopped before changing anything: ${what}: ${errorMessage(e)}; run 'snap check' to see what is damaged`, { cause: e });
}

export async function planGc(repo: Repository, o: GcOptions): Promise<GcPlan> {
  const recs = await readSnapshotRecords(repo);
  if (o.excludeSnapshots) recs.snapshots = recs.snapshots.filter((s) => !o.excludeSnapshots!.has(s.id));
  if (recs.damaged.length > 0) {
    const d = recs.damaged[0]!;
    throw refuse(d.error, `${recs.damaged.length} snapshot record(s) cannot be read (e.g. snapshots/${d.id}), so what they use is unknown`);
  }
  o.sink.info?.(`marking the objects used by ${recs.snapshots.length} snapshot(s)`);
  let marks: Marks;
  try {
    marks = await markSnapshots(repo, recs.snapshots, undefined, o.signal);
  } catch (e) {
    if (o.signal?.aborted) throw e;
    throw refuse(e, 'a tree cannot be read, so what it uses is unknown');
  }

  const inStorage = await listPacks(repo);
  const usage = new Map<string, PackUsage & { count: number; indexedCount: number }>();
  const get = (id: string, indexed: boolean, count = 0): PackUsage & { count: number; indexedCount: number } => {
    let u = usage.get(id);
    if (!u) {
      const size = inStorage.get(id);
      u = { id, size: size ?? 0, inStorage: size !== undefined, indexed, usedCount: 0, usedBytes: 0, unusedCount: 0, unusedBytes: 0, hiddenCount: 0, neededMissing: 0, count, indexedCount: 0 };
      usage.set(id, u);
    }
    return u;
  };
  for await (const p of repo.index.packs()) get(p.id, true, p.count);
  let objectsBefore = 0;
  let matched = 0;
  for await (const [id, loc] of repo.index.objects()) {
    objectsBefore++;
    const u = get(loc.pack, true);
    u.indexedCount++;
    if (isMarked(marks, id)) {
      matched++;
      u.usedCount++;
      u.usedBytes += loc.length;
    } else {
      u.unusedCount++;
      u.unusedBytes += loc.length;
    }
  }
  for (const u of usage.values()) u.hiddenCount = Math.max(0, u.count - u.indexedCount);
  for (const id of inStorage.keys()) get(id, false);

  const reindex = new Map<string, PackEntry[]>();
  if (matched < marks.trees.size + marks.blobs.size) await findUnindexed(repo, marks, usage, reindex);

  const { decisions, totals } = decidePacks(usage.values(), o.maxUnused);
  const lost = decisions.filter((d) => d.action === 'missing');
  if (lost.length > 0) {
    throw refuse(new SnapError('SNAP_MISSING_OBJECT', `pack ${lost[0]!.usage.id.slice(0, 12)} is missing from storage`), `${lost.length} pack(s) holding objects that snapshots use are missing`);
  }
  let sizeBefore = 0;
  for (const s of inStorage.values()) sizeBefore += s;
  return {
    snapshotIds: new Set(recs.snapshots.map((s) => s.id)),
    marks,
    decisions,
    totals,
    reindex,
    sizeBefore,
    packsBefore: inStorage.size,
    objectsBefore,
    maxUnused: o.maxUnused,
  };
}

/**
 * Some used objects are not in the index. An interrupted write (pack durable, index entry not yet
 * written) can leave them in an unindexed pack: find them there, so that pack is indexed rather
 * than deleted. Objects found nowhere are damage, and gc refuses to run.
 */
async function findUnindexed(repo: Repository, marks: Marks, usage: Map<string, PackUsage>, reindex: Map<string, PackEntry[]>): Promise<void> {
  const missing = new Set<string>();
  for (const set of [marks.trees, marks.blobs]) {
    for (const id of set) if (!(await repo.index.lookup(id))) missing.add(toHex(id));
  }
  if (missing.size === 0) return;
  for (const u of usage.values()) {
    if (u.indexed || !u.inStorage) continue;
    let entries: PackEntry[];
    try {
      entries = await readPackTable(repo, u.id);
    } catch {
      continue; // a damaged leftover cannot supply anything
    }
    const needed = entries.filter((e) => missing.delete(toHex(e.id)));
    if (needed.length > 0) {
      u.neededMissing = needed.length;
      reindex.set(u.id, needed);
    }
  }
  if (missing.size > 0) {
    const first = [...missing][0]!;
    throw refuse(new SnapError('SNAP_MISSING_OBJECT', `object ${first.slice(0, 16)} is not in any pack`), `${missing.size} object(s) that snapshots use are missing`);
  }
}

/** Carry out a plan. Each step is durable before the next one removes anything. */
export async function executeGc(repo: Repository, plan: GcPlan, o: GcOptions): Promise<GcResult> {
  const of = (a: PackDecision['action']): PackDecision[] => plan.decisions.filter((d) => d.action === a);
  const toDelete = of('delete');
  const toRewrite = of('rewrite').map((d) => d.usage.id);
  const toUnindex = of('unindex').map((d) => d.usage.id);
  const r: GcResult = {
    objectsFreed: 0, packsDeleted: 0, packsRewritten: 0, packsWritten: 0, packsReindexed: 0, bytesFreed: 0,
    sizeBefore: plan.sizeBefore, sizeAfter: plan.sizeBefore, packsAfter: plan.packsBefore, tempFilesRemoved: 0, damagedKept: [],
    indexFilesWritten: 0, indexFilesRemoved: 0,
  };
  if (toDelete.length + toRewrite.length + toUnindex.length + plan.reindex.size > 0) {
    o.signal?.throwIfAborted();
    await o.beforeDelete?.();
    // The files cache may name chunks that are about to go; a backup trusting it would reference
    // them. Its entries that name anything no snapshot uses go (and are synced) before anything is
    // removed, so no crash can leave one naming a deleted object. What snapshots use stays indexed
    // (gc refuses to run when some of it is missing), so the entries kept stay true; the next
    // backup skips their files as before.
    r.filesCacheDropped = await repo.index.pruneFilesCache((id) => isMarked(plan.marks, id));
    await repo.index.sync();
    for (const [id, entries] of plan.reindex) {
      await repo.index.addPack(id, await storedPackSize(repo, id), entries);
      r.packsReindexed++;
    }
    // 1. Packs no snapshot uses at all leave the index, then storage: first, so that on a full
    // disk their room is there for the packs written next (nothing they hold is needed).
    await assertNoNewSnapshots(repo, plan.snapshotIds);
    o.signal?.throwIfAborted();
    await o.beforeDelete?.();
    r.objectsFreed += await repo.index.removePacks(new Set([...toDelete.filter((d) => d.usage.indexed).map((d) => d.usage.id), ...toUnindex]));
    await repo.index.sync();
    for (const d of toDelete) {
      if (await repo.index.getPack(d.usage.id)) continue;
      await deletePack(repo, d.usage.id);
      r.packsDeleted++;
    }
    // 2. Then the packs partly used: the objects still used go to new packs, written and indexed
    // (the index now points them there)...
    const { done, written } = await rewritePacks(repo, plan, toRewrite, o, r);
    await repo.indexFiles.flush(); // the new packs' index file, before any old pack goes
    await repo.index.sync();
    await assertNoNewSnapshots(repo, plan.snapshotIds);
    o.signal?.throwIfAborted();
    await o.beforeDelete?.();
    // 3. ...the old ones leave the index...
    const gone = new Set(done);
    for (const id of written) gone.delete(id); // a new pack identical to an old one stays
    r.objectsFreed += await repo.index.removePacks(gone);
    await repo.index.sync();
    // 4. ...and only then storage. A crash before this point leaves unindexed leftovers only.
    for (const id of done) {
      if (written.has(id) || (await repo.index.getPack(id))) continue;
      await deletePack(repo, id);
      r.packsRewritten++;
    }
  }
  // 5. The repository's index files are compacted: new ones list every pack kept, then the old
  // ones (which may list deleted packs, and many small files) are removed.
  if (repo.indexFiles.enabled && !repo.appendOnly) {
    o.signal?.throwIfAborted();
    const f = await repo.rewriteIndexFiles(o.beforeDelete);
    r.indexFilesWritten = f.written;
    r.indexFilesRemoved = f.removed;
  }
  const margin = o.tempMarginMs ?? TEMP_MARGIN_MS;
  r.tempFilesRemoved = await removeTempFiles(repo, o.exclusive ? 0 : margin, margin);
  if (!repo.appendOnly) r.reserve = await repo.ensureReserve();
  const after = await listPacks(repo);
  r.packsAfter = after.size;
  r.sizeAfter = [...after.values()].reduce((a, b) => a + b, 0);
  r.bytesFreed = r.sizeBefore - r.sizeAfter;
  return r;
}

async function rewritePacks(repo: Repository, plan: GcPlan, ids: string[], o: GcOptions, r: GcResult): Promise<{ done: string[]; written: Set<string> }> {
  if (ids.length > 0) o.sink.info?.(`rewriting ${ids.length} partly used pack(s)`);
  const w = packRewriterFor(repo);
  const done: string[] = [];
  for (const id of ids) {
    o.signal?.throwIfAborted();
    const copied = await w.copyLive(id, async (e) => isMarked(plan.marks, e.id) && (await repo.index.lookup(e.id))?.pack === id);
    if (copied.ok) done.push(id);
    else {
      r.damagedKept.push(id);
      o.sink.warn?.({ code: 'SNAP_CORRUPT', path: packName(id), message: `pack ${id.slice(0, 12)} was not rewritten: ${copied.reason}; run 'snap check --read-data'` });
    }
  }
  await w.flush();
  r.packsWritten = w.written.size;
  return { done, written: w.written };
}
