// What every walk that expands a snapshot's paths shares (issue 20). Trees name subtrees by id, so
// a crafted repository can nest thousands of levels, or name one subtree twice at each of 40
// levels: 40 trees, 2^40 paths. Walks are iterative (an explicit stack, no recursion: 5,000 levels
// nest fine), and an expanding walk (ls -R, find, export, dups, diff) that meets a tree with
// subdirectories a second time counts the paths below its root once, reading each tree once, and
// stops with a clear error past MAX_EXPANDED_PATHS. Identical directories of a real backup share a
// tree id too: they are counted, never refused, as no file system holds that many paths.
import { SnapError } from '../../core/errors.js';
import { toHex } from '../../core/ids.js';
import type { Tree } from '../../model/tree.js';

/** What a walk needs from a repository. */
export interface TreeReader {
  readTree(id: Buffer): Promise<Tree>;
}

/**
 * The most paths an expanding walk accepts below one root: 2^32, the most inodes ext4 (and xfs
 * by default) can hold in one file system, so no real backup comes near it.
 */
export const MAX_EXPANDED_PATHS = 2 ** 32;

const idKey = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');

/**
 * The number of entries (paths) below `root`, counting an entry once per path that leads to it;
 * each distinct tree is read once. Stops counting once past `limit` (the result is then > limit).
 * Iterative: one frame per level of the deepest path.
 */
export async function countPaths(repo: TreeReader, root: Buffer, limit = MAX_EXPANDED_PATHS): Promise<number> {
  const memo = new Map<string, number>();
  interface Frame {
    key: string;
    nodes: Tree;
    i: number;
    sum: number;
  }
  const stack: Frame[] = [{ key: idKey(root), nodes: await repo.readTree(root), i: 0, sum: 0 }];
  let last = 0;
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.nodes.length || f.sum > limit) {
      stack.pop();
      memo.set(f.key, f.sum);
      last = f.sum;
      if (stack.length > 0) stack[stack.length - 1]!.sum += f.sum;
      continue;
    }
    const n = f.nodes.at(f.i++);
    f.sum += 1;
    if (n.type !== 'dir' || !n.tree) continue;
    const k = idKey(n.tree);
    const known = memo.get(k);
    if (known !== undefined) f.sum += known;
    else stack.push({ key: k, nodes: await repo.readTree(n.tree), i: 0, sum: 0 });
  }
  return last;
}

/** Watches an expanding walk below one root for shared subtrees; see the top of this file. */
export class ExpansionGuard {
  private readonly seen = new Set<string>();
  private checked = false;

  /** `root`: where the walk starts; when not given, the first tree entered. */
  constructor(
    private readonly repo: TreeReader,
    private root?: Buffer,
    private readonly limit = MAX_EXPANDED_PATHS,
  ) {}

  /** Call with each tree the walk is about to expand (its entries read), or with whether it has subdirectories. */
  async enter(id: Buffer, nodes: Tree | boolean): Promise<void> {
    this.root ??= id;
    const k = idKey(id);
    if (!this.seen.has(k)) {
      this.seen.add(k);
      return;
    }
    if (this.checked || !(typeof nodes === 'boolean' ? nodes : nodes.hasDirs)) return;
    this.checked = true;
    const n = await countPaths(this.repo, this.root, this.limit);
    if (n > this.limit) {
      throw new SnapError(
        'SNAP_CORRUPT',
        `the trees below ${toHex(this.root).slice(0, 16)} name the same subtrees so often that they expand to more than ${this.limit} paths ` +
          `(more than any file system holds): a crafted repository. Commands that read each tree once (check, stats) still work; list a single directory with 'snap ls'`,
      );
    }
  }
}

export interface FoldSteps<R> {
  /** A tree's entries, or undefined when it cannot be read (its result is then `unreadable`). */
  read(id: Buffer, hex: string): Promise<Tree | undefined>;
  unreadable(id: Buffer, hex: string): R;
  /** A tree's result, once the result of every subtree it names is in the memo. */
  finish(id: Buffer, hex: string, nodes: Tree): Promise<R>;
}

/**
 * A bottom-up fold over the trees below `root`: each distinct tree once (results memoized by hex
 * id, shared across calls with the same memo), subtrees before their parents, with an explicit
 * stack instead of recursion (issue 20: 5,000 levels). For check's affected paths and repair.
 */
export async function foldTrees<R>(root: Buffer, memo: Map<string, R>, steps: FoldSteps<R>): Promise<R> {
  const rootHex = toHex(root);
  const stack: { id: Buffer; hex: string; nodes?: Tree; i: number }[] = [{ id: root, hex: rootHex, i: 0 }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (memo.has(f.hex)) {
      stack.pop();
      continue;
    }
    if (!f.nodes) {
      const nodes = await steps.read(f.id, f.hex);
      if (!nodes) {
        memo.set(f.hex, steps.unreadable(f.id, f.hex));
        stack.pop();
        continue;
      }
      f.nodes = nodes;
    }
    if (f.i < f.nodes.length) {
      const n = f.nodes.at(f.i++);
      if (n.type === 'dir' && n.tree) {
        const hex = toHex(n.tree);
        if (!memo.has(hex)) stack.push({ id: n.tree, hex, i: 0 });
      }
      continue;
    }
    memo.set(f.hex, await steps.finish(f.id, f.hex, f.nodes));
    stack.pop();
  }
  return memo.get(rootHex)!;
}
