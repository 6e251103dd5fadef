// What the snapshots use: every tree reachable from the snapshot records in storage and every blob
// those trees name. Shared by gc (mark), check (structure) and stats (sizes). Each distinct tree is
// read once, however many snapshots share it, so a walk costs one read per directory version.
import { toHex } from '../core/ids.js';
import { type Tree, openTree } from '../model/tree.js';
import type { Node } from '../model/node.js';
import { decodeSnapshot, type StoredSnapshot } from '../model/snapshot.js';
import type { Backend } from '../backend/backend.js';
import { type ObjectType, packIdFromName } from '../store/pack.js';
import { DATA, SNAPSHOTS, snapshotIdFromName } from './layout.js';

/**
 * A set of 32-byte ids. Keys are the ids as 32-character latin1 strings (half the size of hex):
 * roughly 80-100 bytes per id with the Set's own overhead, so ~100 MB per million objects, i.e.
 * per ~1 TB of unique data at the default 1 MiB average chunk. A compact sorted-array or
 * bloom-backed set is the next step if repositories grow past that.
 */
export class IdSet {
  private readonly s = new Set<string>();

  /** Add an id; true when it was not there yet. */
  add(id: Uint8Array): boolean {
    const k = key(id);
    if (this.s.has(k)) return false;
    this.s.add(k);
    return true;
  }

  has(id: Uint8Array): boolean {
    return this.s.has(key(id));
  }

  get size(): number {
    return this.s.size;
  }

  *[Symbol.iterator](): IterableIterator<Buffer> {
    for (const k of this.s) yield Buffer.from(k, 'latin1');
  }
}

function key(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
}

/** What a walk needs from a repository: verified object reads. */
export interface TreeSource {
  objects: { get(id: Buffer, expectType?: ObjectType): Promise<Buffer> };
}

export interface WalkVisitor {
  /** Once per distinct tree, with its entries. */
  tree?(id: Buffer, nodes: Tree): void | Promise<void>;
  /**
   * Each entry of each distinct tree, in the walk's own pass over it: a large tree decodes an
   * entry each time it is asked for, so a visitor that went over `nodes` again would decode the
   * tree twice (check --read-data of 1,000,000 entries: a third of its CPU).
   */
  entry?(tree: Buffer, n: Node): void | Promise<void>;
  /**
   * Once per distinct blob (file content chunk), right after the entry of the first file that
   * names it: `file` is that entry and `index` the chunk's place in its chunk list.
   */
  blob?(id: Buffer, file: Node, index: number): void | Promise<void>;
  /** A tree that cannot be read or decoded: its subtree is skipped. Throw to abort the walk. */
  treeError?(id: Buffer, e: unknown): void | Promise<void>;
  /** Stops the walk (Ctrl-C): its reason is thrown. */
  signal?: AbortSignal;
}

export interface Marks {
  trees: IdSet;
  blobs: IdSet;
}

export function newMarks(): Marks {
  return { trees: new IdSet(), blobs: new IdSet() };
}

export function isMarked(m: Marks, id: Uint8Array): boolean {
  return m.trees.has(id) || m.blobs.has(id);
}

/** Tree reads in flight at once: trees are small, so latency (not bandwidth) bounds the walk. */
const WALK_CONCURRENCY = 8;

/**
 * Walk the trees under `roots`, skipping trees already in `marks` (so calling it once per snapshot
 * with the same marks visits every object once). Trees and blobs are kept apart: a blob whose bytes
 * happen to equal a tree's must not stop the walk from descending into that tree.
 */
export async function walkTrees(src: TreeSource, roots: Buffer[], marks: Marks, v: WalkVisitor = {}): Promise<void> {
  const stack: Buffer[] = [];
  for (const r of roots) if (marks.trees.add(r)) stack.push(r);
  let active = 0;
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const visit = async (id: Buffer): Promise<void> => {
      v.signal?.throwIfAborted();
      let nodes: Tree;
      try {
        nodes = openTree(await src.objects.get(id, 'tree'), `tree ${toHex(id).slice(0, 16)}`);
      } catch (e) {
        await v.treeError?.(id, e);
        return;
      }
      await v.tree?.(id, nodes);
      for (const n of nodes) {
        if (v.entry) await v.entry(id, n);
        if (n.type === 'dir' && n.tree) {
          if (marks.trees.add(n.tree)) stack.push(n.tree);
        } else if (n.type === 'file' && n.chunks) {
          for (let i = 0; i < n.chunks.length; i++) {
            const c = n.chunks[i]!;
            if (marks.blobs.add(c)) await v.blob?.(c, n, i);
          }
        }
      }
    };
    const pump = (): void => {
      if (failed) return;
      while (active < WALK_CONCURRENCY && stack.length > 0) {
        const id = stack.pop()!;
        active++;
        visit(id).then(
          () => {
            active--;
            pump();
          },
          (e: unknown) => {
            failed = true;
            reject(e);
          },
        );
      }
      if (active === 0 && stack.length === 0) resolve();
    };
    pump();
  });
}

export interface StoredRecords {
  snapshots: StoredSnapshot[];
  /** Records in storage that do not decode (name and reason). */
  damaged: { id: string; error: unknown }[];
}

/** Every snapshot record in storage (not the index: the index may lag behind storage). */
export async function readSnapshotRecords(repo: { readonly backend: Backend }): Promise<StoredRecords> {
  const backend = repo.backend;
  const out: StoredRecords = { snapshots: [], damaged: [] };
  for await (const blob of backend.list(SNAPSHOTS)) {
    const id = snapshotIdFromName(blob.name);
    if (!id) continue;
    try {
      out.snapshots.push(decodeSnapshot(await backend.get(blob.name), id));
    } catch (e) {
      out.damaged.push({ id, error: e });
    }
  }
  out.snapshots.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
  return out;
}

/** Mark everything the given snapshots use. Any unreadable tree aborts (gc must not guess). */
export async function markSnapshots(src: TreeSource, snaps: StoredSnapshot[], marks: Marks = newMarks(), signal?: AbortSignal): Promise<Marks> {
  await walkTrees(src, snaps.map((s) => s.tree), marks, {
    treeError(_id, e) {
      throw e;
    },
    signal,
  });
  return marks;
}

/** Pack files in storage: id -> size. */
export async function listPacks(repo: { readonly backend: Backend }): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const b of repo.backend.list(DATA)) {
    const id = packIdFromName(b.name);
    if (id) out.set(id, b.size);
  }
  return out;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
