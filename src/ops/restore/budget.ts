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
import { type CountableTree, Tree } from '../../model/tree.js';
import type { PathSelection } from '../tree/selection.js';
import { type CountReader, type Expansion, expandTree } from '../tree/walk.js';

export const MAX_EXPANDED_ENTRIES = 2 ** 32;

export type { Expansion };

/**
 * Count the entries under `root` that a restore of `selection` writes (expandTree: the walk's own
 * count). Trees that cannot be read count as empty: the restore reports them.
 */
export async function expandedSize(
  repo: CountReader,
  root: Buffer,
  selection: PathSelection,
  signal?: AbortSignal,
  /** Told of the chunk ids of every file the count walks (a repeated subtree is walked once). */
  onFile?: (chunks: Buffer[]) => Promise<void> | void,
): Promise<Expansion> {
  const read = async (id: Buffer): Promise<CountableTree> => {
    try {
      return await repo.readTree(id);
    } catch (e) {
      if (isSnapError(e, 'SNAP_CORRUPT') || isSnapError(e, 'SNAP_MISSING_OBJECT')) return Tree.EMPTY;
      throw e;
    }
  };
  return expandTree(repo, root, { selection, read, onFile, signal });
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
