// `snap repair`: bring a damaged repository back to a state `check` calls clean, keeping every
// intact byte and deleting nothing it cannot replace.
//
//  1. Rebuild the index from the pack headers and snapshot records in storage.
//  2. Find the damage (the structural check; with readData also every object's hash).
//  3. Salvage each damaged pack: its objects that verify are copied into new packs (written and
//     indexed first); then the pack itself moves to `quarantine/` (copied there durably before it
//     leaves `data/`), so the damaged objects leave the repository and the next backup stores
//     those files afresh instead of deduplicating against damage.
//  4. Write, for each snapshot that uses damaged or missing objects, a replacement: the same
//     record with the damaged files and unreadable directories left out, tagged `repaired`, with
//     `original` naming the damaged snapshot. With `forget`, the damaged original is then removed
//     (its intact content lives on in the replacement).
// Damaged snapshot records cannot be replaced: they move to `quarantine/snapshots/`.
import { displayName } from '../../core/bytes.js';
import { isSnapError, SnapError } from '../../core/errors.js';
import { toHex } from '../../core/ids.js';
import type { ProgressSink } from '../../core/progress.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot, type StoredSnapshot } from '../../model/snapshot.js';
import { encodeWithSubtrees, openTree } from '../../model/tree.js';
import { type FoldSteps, foldTrees } from '../tree/walk.js';
import type { Repository } from '../../repo/repository.js';
import { QUARANTINE, snapshotName } from '../../repo/layout.js';
import { copyToQuarantine, deletePack, entriesOfPack, packIntact, packName, type PackEntry, readForSalvage, readPackTable, verifyEntry } from '../../repo/maintenance.js';
import { checkRepository, type CheckReport } from './check.js';
import { replacementsOf } from './check-affected.js';
import { quarantineLog } from '../../repo/oplog-check.js';
import { packRewriterFor } from '../../repo/pack-rewriter.js';
import { errorMessage, listPacks } from '../../repo/reachability.js';

export const REPAIRED_TAG = 'repaired';

export interface RepairOptions {
  sink: ProgressSink;
  /** Find and report, change nothing (not even the index). */
  dryRun?: boolean;
  /** Remove each damaged snapshot once its replacement is saved. */
  forget?: boolean;
  /** Verify every object's content, not only the structure (reads the whole repository). */
  readData?: boolean;
  program: string;
  /** Called before anything is removed (the CLI asserts it still holds the exclusive lock). */
  beforeDelete?(): Promise<void> | void;
  /** Paths listed per snapshot (counts are always exact). */
  maxPaths?: number;
  /** Stops repair between steps (Ctrl-C); each step is safe to stop after (docs/format.md, "Repair"). */
  signal?: AbortSignal;
}

export interface PackRepair {
  pack: string;
  size: number;
  reason: string;
  /** Objects copied into new packs. */
  salvaged: number;
  /** Objects that did not verify (or all, when the pack's table of contents is unreadable). */
  lost: number;
  /** Moved to quarantine/ (false in a dry run). */
  quarantined: boolean;
}

export interface SnapshotRepair {
  original: string;
  time: string;
  hostname: string;
  /** Paths left out (lossy UTF-8 for display); a path ending in `/` is a directory whose tree is lost. */
  removed: string[];
  removedCount: number;
  /** The replacement's id (in a dry run: the id it would get). Absent when nothing is left to save. */
  replacement?: string;
  forgotten: boolean;
  /** Why no replacement is written. */
  unrepairable?: string;
  /** The replacement was written by an earlier repair (this one wrote nothing for it). */
  earlier?: boolean;
}

export interface RepairReport {
  dryRun: boolean;
  index?: { packs: number; objects: number; snapshots: number; problems: string[] };
  problemsFound: number;
  packs: PackRepair[];
  snapshots: SnapshotRepair[];
  /** Snapshot records that do not decode: moved to quarantine/snapshots/. */
  records: { id: string; reason: string; quarantined: boolean }[];
  /** Operation log records that do not parse: moved to quarantine/log/ (docs/format.md). */
  logRecords: { name: string; reason: string; quarantined: boolean }[];
  /** The repository's index files rewritten from the rebuilt index (docs/format.md, "Index files"). */
  indexFiles?: { written: number; removed: number; damaged: string[] };
}

export async function repairRepository(repo: Repository, o: RepairOptions): Promise<RepairReport> {
  const report: RepairReport = { dryRun: o.dryRun === true, problemsFound: 0, packs: [], snapshots: [], records: [], logRecords: [] };
  if (!o.dryRun) {
    o.sink.info?.('rebuilding the index from the repository');
    // From every pack header: the repository's index files may be what is damaged.
    report.index = await repo.rebuildIndex(o.signal, { fromPacks: true });
  }
  o.sink.info?.(o.readData ? 'checking the structure and reading all data' : 'checking the structure');
  const check = await checkRepository(repo, { sink: o.sink, readData: o.readData ? { kind: 'all' } : undefined, maxPaths: 0, signal: o.signal });
  report.problemsFound = check.problems.length;

  const damaged = new Set(check.damagedObjects);
  await salvagePacks(repo, check, o, report, damaged);
  if (!o.dryRun) {
    // Backups must not trust cached chunk lists that may name objects that just left the index.
    await repo.index.clearFilesCache();
    await repo.index.sync();
  }
  o.signal?.throwIfAborted();
  await quarantineRecords(repo, check, o, report);
  const logDamage = check.problems.filter((p) => p.kind === 'log-damaged' && p.log).map((p) => ({ name: p.log!, message: p.message }));
  const movedLog = await quarantineLog(repo, logDamage, o);
  report.logRecords = movedLog.map((d) => ({ name: d.name, reason: d.message, quarantined: !o.dryRun }));
  o.signal?.throwIfAborted();
  await replaceSnapshots(repo, damaged, o, report);
  // Index files: damaged ones (and every other, with the packs moved aside above) are replaced by
  // new ones written from the index rebuilt from the pack headers.
  const damagedFiles = check.problems.filter((p) => p.kind === 'index-file-damaged' && p.indexFile).map((p) => p.indexFile!);
  if (!o.dryRun && repo.indexFiles.enabled) {
    const f = await repo.rewriteIndexFiles(o.beforeDelete);
    report.indexFiles = { ...f, damaged: damagedFiles };
  } else if (damagedFiles.length > 0) report.indexFiles = { written: 0, removed: 0, damaged: damagedFiles };
  return report;
}

/**
 * Packs the check found fault with (their content hash, their table, an object in them, or a
 * failed read): each is read again and verified before anything is decided.
 */
function suspectPacks(check: CheckReport): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of check.problems) if (p.pack && !out.has(p.pack)) out.set(p.pack, p.message);
  return out;
}

async function salvagePacks(repo: Repository, check: CheckReport, o: RepairOptions, report: RepairReport, damaged: Set<string>): Promise<void> {
  const packs = suspectPacks(check);
  // A tree that failed to read in the structural check: its pack is damaged too.
  for (const p of check.problems) {
    if (p.kind !== 'tree-damaged' || !p.object) continue;
    const loc = await repo.index.lookup(Buffer.from(p.object, 'hex'));
    if (loc && !packs.has(loc.pack)) packs.set(loc.pack, p.message);
  }
  // Packs whose table of contents is unreadable were skipped by the rebuild: nothing in them can
  // be located, so they are quarantined whole.
  const stored = await listPacks(repo);
  const indexed = new Set<string>();
  for await (const p of repo.index.packs()) indexed.add(p.id);
  if (!o.dryRun) {
    for (const id of stored.keys()) {
      if (indexed.has(id)) continue;
      try {
        await readPackTable(repo, id); // the trailer and table only, not the whole pack
      } catch (e) {
        if (isSnapError(e, 'SNAP_MISSING_OBJECT')) continue;
        if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
        packs.set(id, errorMessage(e));
      }
    }
  }
  for (const id of packs.keys()) if (!stored.has(id)) packs.delete(id); // gone: its objects are missing
  if (packs.size === 0) return;

  const rewriter = packRewriterFor(repo);
  const salvaged: { id: string; bytes: Buffer }[] = [];
  for (const [id, reason] of packs) {
    let bytes: Buffer;
    let opened: { damaged: number } | undefined;
    try {
      // An encrypted pack comes back with its damaged segments as zeros: the objects in them fail
      // their verification below, the others are salvaged.
      const r = await readForSalvage(repo, packName(id));
      bytes = r.bytes;
      if (r.sealed) opened = { damaged: r.damaged };
    } catch (e) {
      // Gone: the rebuilt index no longer lists it, so its objects are missing, not salvageable.
      // Any other failure to read cannot be told from damage: stop rather than drop files.
      if (!isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
      continue;
    }
    let entries: PackEntry[] = [];
    let tableOk = true;
    try {
      entries = entriesOfPack(bytes, id);
    } catch {
      tableOk = false; // every object in it is lost
    }
    const good: PackEntry[] = [];
    const lost: Buffer[] = [];
    for (const e of entries) {
      if ((await repo.index.lookup(e.id))?.pack !== id) continue; // the index uses another copy
      try {
        await verifyEntry(bytes, e, id, undefined, repo.objects.ctx);
        good.push(e);
      } catch {
        lost.push(e.id);
      }
    }
    for (const e of good) damaged.delete(toHex(e.id));
    for (const l of lost) damaged.add(toHex(l));
    // Read back whole and intact: what the check saw was a failed read, not damage.
    if (tableOk && lost.length === 0 && packIntact(bytes, id, opened)) continue;
    const pr: PackRepair = { pack: id, size: stored.get(id) ?? bytes.length, reason, salvaged: good.length, lost: tableOk ? lost.length : 1, quarantined: false };
    report.packs.push(pr);
    if (o.dryRun) continue;
    await rewriter.copyEntries(bytes, good);
    salvaged.push({ id, bytes });
  }
  if (o.dryRun) return;
  // New packs durable and indexed before an old one leaves data/.
  await rewriter.flush();
  await repo.index.sync();
  for (const { id, bytes } of salvaged) {
    await copyToQuarantine(repo, packName(id), bytes);
    await o.beforeDelete?.();
    await repo.index.removePacks(new Set([id]));
    await repo.index.sync();
    await deletePack(repo, id);
    report.packs.find((p) => p.pack === id)!.quarantined = true;
  }
  if (salvaged.length) o.sink.info?.(`${salvaged.length} damaged pack(s) moved to ${QUARANTINE}; ${rewriter.written.size} new pack(s) hold what they had intact`);
}

async function quarantineRecords(repo: Repository, check: CheckReport, o: RepairOptions, report: RepairReport): Promise<void> {
  for (const p of check.problems) {
    if (p.kind !== 'snapshot-damaged' || !p.snapshot) continue;
    const name = snapshotName(p.snapshot);
    // Read it again: only a record that is still there and still does not decode is damage.
    let bytes: Buffer;
    let sealDamage = 0;
    try {
      ({ bytes, damaged: sealDamage } = await readForSalvage(repo, name));
    } catch (e) {
      if (isSnapError(e, 'SNAP_MISSING_OBJECT')) continue;
      throw e;
    }
    try {
      if (sealDamage > 0) throw new SnapError('SNAP_CORRUPT', `snapshot ${p.snapshot.slice(0, 8)} failed authentication`);
      decodeSnapshot(bytes, p.snapshot);
      continue; // it reads now: the check met a failed read, not damage
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
    }
    const rec = { id: p.snapshot, reason: p.message, quarantined: false };
    report.records.push(rec);
    if (o.dryRun) continue;
    await copyToQuarantine(repo, name, bytes);
    await o.beforeDelete?.();
    await repo.removeSnapshot(p.snapshot);
    rec.quarantined = true;
  }
}

const SLASH = Buffer.from('/');

interface Rewritten {
  /** The new tree id; undefined when the tree itself cannot be read. */
  id?: Buffer;
  removed: { rel: Buffer; dir: boolean }[];
  count: number;
  /** Files (and their bytes) left out one by one; files under a lost directory are not known. */
  files: number;
  bytes: number;
}

async function replaceSnapshots(repo: Repository, damaged: Set<string>, o: RepairOptions, report: RepairReport): Promise<void> {
  const maxPaths = o.maxPaths ?? 1000;
  const memo = new Map<string, Rewritten>();
  const blobOk = async (id: Buffer): Promise<boolean> => {
    if (damaged.has(toHex(id))) return false;
    const loc = await repo.index.lookup(id);
    return loc !== undefined && loc.type === 'blob';
  };
  // Bottom-up, each tree once, no recursion (ops/tree/walk.ts).
  const steps: FoldSteps<Rewritten> = {
    read: async (tree, hex) => {
      if (damaged.has(hex)) return undefined;
      try {
        return openTree(await repo.objects.get(tree, 'tree'), `tree ${hex.slice(0, 16)}`);
      } catch (e) {
        // Lost or damaged; any other failure (a read error) cannot be told from damage: stop.
        if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
        return undefined;
      }
    },
    unreadable: () => ({ removed: [{ rel: Buffer.alloc(0), dir: true }], count: 1, files: 0, bytes: 0 }),
    finish: async (tree, _hex, nodes) => {
      // Two passes: the first finds what changes (an entry dropped: null; a new subtree id), the
      // second, only for a tree that changes, holds its entries to re-encode them (at most
      // MAX_TREE_ENTRIES, about 670 bytes each decoded).
      const changes = new Map<number, Buffer | null>();
      const removed: Rewritten['removed'] = [];
      let count = 0;
      let files = 0;
      let size = 0;
      for (let i = 0; i < nodes.length; i++) {
        const n = nodes.at(i);
        if (n.type === 'file' && n.chunks) {
          let ok = true;
          for (const c of n.chunks) if (!(ok = await blobOk(c))) break;
          if (!ok) {
            count++;
            files++;
            size += n.size;
            if (removed.length < maxPaths) removed.push({ rel: n.name, dir: false });
            changes.set(i, null);
            continue;
          }
        } else if (n.type === 'dir' && n.tree) {
          const sub = memo.get(toHex(n.tree))!;
          count += sub.count;
          files += sub.files;
          size += sub.bytes;
          for (const h of sub.removed) {
            if (removed.length >= maxPaths) break;
            removed.push({ rel: h.rel.length ? Buffer.concat([n.name, SLASH, h.rel]) : n.name, dir: h.dir });
          }
          if (!sub.id) changes.set(i, null);
          else if (!sub.id.equals(n.tree)) changes.set(i, sub.id);
        }
      }
      if (count === 0) return { id: tree, removed: [], count: 0, files: 0, bytes: 0 };
      const bytes = encodeWithSubtrees(nodes, changes);
      const id = o.dryRun ? repo.hashId(bytes) : (await repo.objects.add('tree', bytes)).id;
      return { id, removed, count, files, bytes: size };
    },
  };
  const rewrite = (tree: Buffer): Promise<Rewritten> => foldTrees(tree, memo, steps);

  const snaps = await repo.listSnapshots();
  const replaced = replacementsOf(snaps);
  for (const s of snaps) {
    const r = await rewrite(s.tree);
    if (r.count === 0) continue;
    const earlier = replaced.get(s.id);
    const sr: SnapshotRepair = {
      original: s.id,
      time: s.time,
      hostname: s.hostname,
      removed: r.removed.map((h) => `/${displayName(h.rel)}${h.dir && h.rel.length ? '/' : ''}`),
      removedCount: r.count,
      forgotten: false,
    };
    report.snapshots.push(sr);
    if (earlier) {
      // An earlier repair replaced it: what is left to do is (with --forget) removing it.
      sr.replacement = earlier;
      sr.earlier = true;
      if (o.forget && !o.dryRun) await forgetOriginal(repo, s.id, o, sr);
      continue;
    }
    if (!r.id) {
      sr.unrepairable = 'its root tree is lost: nothing of it can be restored';
      continue;
    }
    const replacement = replacementOf(s, r, o.program);
    if (o.dryRun) {
      sr.replacement = encodeSnapshot(replacement).id;
      continue;
    }
    const saved = await repo.saveSnapshot(replacement);
    sr.replacement = saved.id;
    o.sink.info?.(`snapshot ${s.id.slice(0, 8)} -> ${saved.id.slice(0, 8)}: ${r.count} damaged path(s) left out`);
    if (o.forget) await forgetOriginal(repo, s.id, o, sr);
  }
}

async function forgetOriginal(repo: Repository, id: string, o: RepairOptions, sr: SnapshotRepair): Promise<void> {
  await o.beforeDelete?.();
  await repo.removeSnapshot(id);
  sr.forgotten = true;
}

/**
 * The same record with the new root. The summary still describes the original backup run, except
 * its totals, which leave out the files removed one by one (those under a lost directory are
 * unknown), and what it added to the repository: nothing but a few trees, counted as 0 (docs/format.md).
 */
function replacementOf(s: StoredSnapshot, r: Rewritten, program: string): Snapshot {
  const { id, ...rest } = s;
  return {
    ...rest,
    tree: r.id!,
    summary: {
      ...s.summary,
      totalFiles: Math.max(0, s.summary.totalFiles - r.files),
      totalBytes: Math.max(0, s.summary.totalBytes - r.bytes),
      dataAdded: 0,
      objectsAdded: 0,
    },
    tags: [...new Set([...s.tags, REPAIRED_TAG])].sort(),
    original: Buffer.from(id, 'hex'),
    program,
  };
}

/** True when a report leaves damage behind that repair could not address. */
export function repairIncomplete(r: RepairReport): boolean {
  return r.snapshots.some((s) => s.unrepairable !== undefined);
}
