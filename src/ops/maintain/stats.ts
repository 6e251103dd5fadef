// `snap stats`: what the repository holds and how well deduplication and compression work.
// Logical bytes are what the snapshots would take restored (their recorded totals); raw bytes are
// the distinct objects uncompressed; stored bytes are what those objects take in packs.
import type { StoredSnapshot } from '../../model/snapshot.js';
import type { Repository } from '../../repo/repository.js';
import { isMarked, listPacks, markSnapshots, newMarks, type Marks, walkTrees } from '../../repo/reachability.js';

export interface RepoStats {
  snapshots: number;
  /** Distinct objects the snapshots use (trees and blobs). */
  objects: number;
  trees: number;
  blobs: number;
  /** Pack files in storage: count and bytes (includes headers and anything gc would remove). */
  packs: number;
  packBytes: number;
  /** Stored (compressed) and uncompressed bytes of the used objects. */
  storedBytes: number;
  rawBytes: number;
  /** Sum of the snapshots' file sizes. */
  logicalBytes: number;
  /** logicalBytes / uncompressed bytes of the used file chunks. */
  dedupRatio: number;
  /** rawBytes / storedBytes. */
  compressionRatio: number;
}

export interface SnapshotStats {
  snapshot: string;
  logicalBytes: number;
  files: number;
  /** Distinct objects this snapshot uses. */
  objects: number;
  /** Of those, the ones no other snapshot uses (what forgetting it and gc would free). */
  uniqueObjects: number;
  uniqueStoredBytes: number;
  uniqueRawBytes: number;
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);

export async function repoStats(repo: Repository, snaps: StoredSnapshot[], signal?: AbortSignal): Promise<RepoStats> {
  const marks = await markSnapshots(repo, snaps, undefined, signal);
  let storedBytes = 0;
  let rawBytes = 0;
  let blobRaw = 0;
  for await (const [id, loc] of repo.index.objects()) {
    if (!isMarked(marks, id)) continue;
    storedBytes += loc.length;
    rawBytes += loc.rawLength;
    if (loc.type === 'blob') blobRaw += loc.rawLength;
  }
  const packs = await listPacks(repo.backend);
  const logicalBytes = snaps.reduce((a, s) => a + s.summary.totalBytes, 0);
  return {
    snapshots: snaps.length,
    objects: marks.trees.size + marks.blobs.size,
    trees: marks.trees.size,
    blobs: marks.blobs.size,
    packs: packs.size,
    packBytes: [...packs.values()].reduce((a, b) => a + b, 0),
    storedBytes,
    rawBytes,
    logicalBytes,
    dedupRatio: ratio(logicalBytes, blobRaw),
    compressionRatio: ratio(rawBytes, storedBytes),
  };
}

export async function snapshotStats(repo: Repository, snap: StoredSnapshot, all: StoredSnapshot[], signal?: AbortSignal): Promise<SnapshotStats> {
  const others: Marks = await markSnapshots(repo, all.filter((s) => s.id !== snap.id), undefined, signal);
  const mine = newMarks();
  const r: SnapshotStats = { snapshot: snap.id, logicalBytes: snap.summary.totalBytes, files: snap.summary.totalFiles, objects: 0, uniqueObjects: 0, uniqueStoredBytes: 0, uniqueRawBytes: 0 };
  const count = async (id: Buffer): Promise<void> => {
    if (isMarked(others, id)) return;
    r.uniqueObjects++;
    const loc = await repo.index.lookup(id);
    r.uniqueStoredBytes += loc?.length ?? 0;
    r.uniqueRawBytes += loc?.rawLength ?? 0;
  };
  await walkTrees(repo, [snap.tree], mine, {
    tree: (id) => count(id),
    blob: (id) => count(id),
    treeError(_id, e) {
      throw e;
    },
    signal,
  });
  r.objects = mine.trees.size + mine.blobs.size;
  return r;
}
