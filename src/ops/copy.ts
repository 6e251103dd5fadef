// `snap copy`: snapshots from one repository into another, any backend to any backend (the 3-2-1
// recipe of docs/remote.md: a local repository copied to S3). Only objects the destination lacks
// are read and sent, each verified on the way: read through the source's decode-and-verify path
// (its hash checked against its id), and its id computed again from the bytes the destination
// stores. Write order as for a backup: objects, their index entries, then the snapshot record,
// which is the source's record unchanged (so its id is the same, and a snapshot copied twice is
// recognised and skipped). Chunks are copied as they are: a destination with other chunker
// parameters holds them as the source cut them (they deduplicate with its own backups less well).
import { SnapError } from '../core/errors.js';
import { sha256, toHex } from '../core/ids.js';
import type { ProgressSink } from '../core/progress.js';
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { decodeTree } from '../model/tree.js';
import type { ObjectType } from '../store/pack.js';
import type { Repository } from '../repo/repository.js';
import { IdSet } from './reachability.js';

export interface CopyOptions {
  sink: ProgressSink;
  signal?: AbortSignal;
  /** Objects read from the source at once (each a ranged read on remote storage). */
  concurrency?: number;
}

export interface CopyResult {
  copied: { source: string; id: string }[];
  /** Snapshots the destination held already. */
  skipped: string[];
  objectsCopied: number;
  objectsPresent: number;
  bytesCopied: number;
}

type Dest = Pick<Repository, 'objects' | 'listSnapshots' | 'saveSnapshot'>;
type Source = Pick<Repository, 'objects'>;

export async function copySnapshots(src: Source, dst: Dest, snaps: StoredSnapshot[], o: CopyOptions): Promise<CopyResult> {
  const r: CopyResult = { copied: [], skipped: [], objectsCopied: 0, objectsPresent: 0, bytesCopied: 0 };
  const have = new Set((await dst.listSnapshots()).map((s) => s.id));
  const seenTrees = new IdSet();
  const seenBlobs = new IdSet();
  const limit = Math.max(1, o.concurrency ?? 8);

  /** Copy one object unless the destination has it; returns its bytes when it is a tree. */
  const copyObject = async (id: Buffer, type: ObjectType): Promise<Buffer | undefined> => {
    if (type === 'blob' && (await dst.objects.has(id))) {
      r.objectsPresent++;
      return undefined;
    }
    const present = type === 'tree' && (await dst.objects.has(id));
    const raw = await src.objects.get(id, type); // verified against its id by the source's reader
    if (present) {
      r.objectsPresent++;
      return raw;
    }
    if (!sha256(raw).equals(id)) throw new SnapError('SNAP_CORRUPT', `object ${toHex(id).slice(0, 16)} read from the source does not match its id; nothing more is copied`);
    await dst.objects.add(type, raw, id);
    r.objectsCopied++;
    r.bytesCopied += raw.length;
    return raw;
  };

  for (const s of snaps) {
    o.signal?.throwIfAborted();
    const { id: _id, ...record } = s;
    void _id;
    if (have.has(s.id)) {
      r.skipped.push(s.id);
      continue;
    }
    // Trees breadth-first, a bounded number of objects in flight.
    let queue: { id: Buffer; type: ObjectType }[] = [];
    if (seenTrees.add(s.tree)) queue.push({ id: s.tree, type: 'tree' });
    while (queue.length > 0) {
      const next: { id: Buffer; type: ObjectType }[] = [];
      for (let i = 0; i < queue.length; i += limit) {
        o.signal?.throwIfAborted();
        const batch = queue.slice(i, i + limit);
        const trees = await Promise.all(batch.map((q) => copyObject(q.id, q.type)));
        batch.forEach((q, k) => {
          if (q.type !== 'tree') return;
          const nodes: Node[] = decodeTree(trees[k]!, `tree ${toHex(q.id).slice(0, 16)}`);
          for (const n of nodes) {
            if (n.type === 'dir' && n.tree) {
              if (seenTrees.add(n.tree)) next.push({ id: n.tree, type: 'tree' });
            } else if (n.type === 'file' && n.chunks) {
              for (const c of n.chunks) if (seenBlobs.add(c)) next.push({ id: c, type: 'blob' });
            }
          }
        });
      }
      queue = next;
    }
    // Everything the record names is durable and indexed before the record is written.
    const stored = await dst.saveSnapshot(record);
    if (stored.id !== s.id) o.sink.info?.(`snapshot ${s.id.slice(0, 8)} is ${stored.id.slice(0, 8)} in the destination (its record was re-encoded)`);
    have.add(stored.id);
    r.copied.push({ source: s.id, id: stored.id });
  }
  return r;
}
