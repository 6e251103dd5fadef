// How many entries a restore will write, counted before it writes any (issue 20). A tree id may
// repeat in a snapshot — identical directories are one tree — so a restore expands the tree DAG,
// and a crafted one (40 levels, each tree naming the next twice) expands to 2^40 entries from
// 40 objects: a restore that runs until killed. Counting is cheap whatever the expansion: each
// distinct tree is read once and its expanded size remembered, so the count costs one read of
// every distinct tree (the walk reads them again), and memory for one number per distinct tree.
//
// The limit never refuses a real backup: a restore that needs more entries than the target file
// system can hold at all (its total inodes, when it reports them) could never complete, and no
// backup holds more than MAX_EXPANDED_ENTRIES (4.3 billion: the backup itself read every one of
// them from disk, and at 100,000 entries a second that is 12 hours). Hard-link members count as
// their share of one inode, so a tree of many hard links to the same files (rsnapshot) counts
// the inodes it needs.
import { SnapError, isSnapError } from '../../core/errors.js';
import type { Node } from '../../model/node.js';
import { Tree } from '../../model/tree.js';

export const MAX_EXPANDED_ENTRIES = 2 ** 32;

export type Scope = 'all' | 'partial' | 'none';

interface Frame {
  key: string | undefined; // memo key when the whole subtree is counted
  nodes: Tree;
  i: number;
  entries: number;
  inodes: number;
  parts: Buffer[];
  scope: 'all' | 'partial';
}

export interface Expansion {
  /** Entries the restore walks (every directory, file, link and special file). */
  entries: number;
  /** Inodes they need (hard-link members as their share of one). */
  inodes: number;
}

/**
 * Count the entries under `root` that a restore with `scope` (restore.ts's include filter)
 * writes. Trees that cannot be read count as empty: the restore reports them.
 */
export async function expandedSize(
  readTree: (id: Buffer) => Promise<Tree>,
  root: Buffer,
  scope: (parts: Buffer[]) => Scope,
  signal?: AbortSignal,
  /** Told of every entry but directories that the count walks (a repeated subtree is walked once). */
  onEntry?: (node: Node) => Promise<void>,
): Promise<Expansion> {
  const memo = new Map<string, Expansion>();
  const rootScope = scope([]);
  if (rootScope === 'none') return { entries: 0, inodes: 0 };
  const read = async (id: Buffer): Promise<Tree> => {
    try {
      return await readTree(id);
    } catch (e) {
      if (isSnapError(e, 'SNAP_CORRUPT') || isSnapError(e, 'SNAP_MISSING_OBJECT')) return Tree.EMPTY;
      throw e;
    }
  };
  const frame = async (id: Buffer, parts: Buffer[], s: 'all' | 'partial'): Promise<Frame> => ({
    key: s === 'all' ? id.toString('latin1') : undefined, nodes: await read(id), i: 0, entries: 0, inodes: 0, parts, scope: s,
  });
  const stack: Frame[] = [await frame(root, [], rootScope)];
  let done: Expansion = { entries: 0, inodes: 0 };
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.nodes.length) {
      stack.pop();
      const sum = { entries: f.entries, inodes: f.inodes };
      if (f.key !== undefined) memo.set(f.key, sum);
      const up = stack[stack.length - 1];
      if (up) {
        up.entries += sum.entries;
        up.inodes += sum.inodes;
      } else done = sum;
      continue;
    }
    signal?.throwIfAborted();
    const node = f.nodes.at(f.i++);
    const childParts = f.scope === 'all' ? f.parts : [...f.parts, node.name];
    const s = f.scope === 'all' ? 'all' : scope(childParts);
    if (s === 'none') continue;
    if (node.type === 'dir') {
      f.entries++;
      f.inodes++;
      if (!node.tree) continue;
      const known = s === 'all' ? memo.get(node.tree.toString('latin1')) : undefined;
      if (known) {
        f.entries += known.entries;
        f.inodes += known.inodes;
      } else stack.push(await frame(node.tree, childParts, s));
    } else if (s === 'all') {
      await onEntry?.(node);
      f.entries++;
      f.inodes += node.type === 'file' && node.inode && node.inode.links > 1 ? 1 / node.inode.links : 1;
    }
  }
  return done;
}

/** Refuse an expansion no real backup has, or one the target cannot hold (nothing is written yet). */
export function checkExpansion(x: Expansion, targetInodes: number | undefined, what: string): void {
  if (x.entries > MAX_EXPANDED_ENTRIES) {
    throw new SnapError('SNAP_CORRUPT', `${what} expands to ${x.entries} entries, more than any backup holds (${MAX_EXPANDED_ENTRIES}): its trees were crafted to repeat; nothing was restored`);
  }
  if (targetInodes !== undefined && targetInodes > 0 && Math.floor(x.inodes) > targetInodes) {
    throw new SnapError('SNAP_NO_SPACE', `${what} needs ${Math.floor(x.inodes)} files and folders, but the target file system holds at most ${targetInodes} in all; nothing was restored`);
  }
}
