// What every walk that expands a snapshot's paths shares (issue 20). Trees name subtrees by id, so
// a crafted repository can nest thousands of levels, or name one subtree twice at each of 40
// levels: 40 trees, 2^40 paths. Walks are iterative (an explicit stack, no recursion: 5,000 levels
// nest fine), and an expanding walk (ls -R, find, export, dups, diff) that meets a tree with
// subdirectories a second time counts the paths below its root once, reading each tree once, and
// stops with a clear error past MAX_EXPANDED_PATHS. Identical directories of a real backup share a
// tree id too: they are counted, never refused, as no file system holds that many paths.
import { SnapError } from '../../core/errors.js';
import { toHex } from '../../core/ids.js';
import type { Node } from '../../model/node.js';
import { type CountableTree, Tree } from '../../model/tree.js';
import type { PathSelection } from './selection.js';

/** What a walk needs from a repository. */
export interface TreeReader {
  readTree(id: Buffer): Promise<Tree>;
}

/**
 * The most paths an expanding walk accepts below one root: 2^32, the most inodes ext4 (and xfs
 * by default) can hold in one file system, so no real backup comes near it.
 */
export const MAX_EXPANDED_PATHS = 2 ** 32;

const SLASH = Buffer.from('/');

const idKey = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');

/** The entries a walk below one root meets: `inodes` counts a hard-link member as its share of one inode. */
export interface Expansion {
  entries: number;
  inodes: number;
}

/** What a count needs from a repository: trees as counting reads them (a Tree, or a sketch: model/tree.ts). */
export interface CountReader {
  readTree(id: Buffer): Promise<CountableTree>;
}

export interface ExpandOptions {
  /** Only what a walk with this selection meets is counted (default: everything). */
  selection?: PathSelection;
  /** How a tree is read (default: repo.readTree, whose errors propagate). */
  read?: (id: Buffer) => Promise<CountableTree>;
  /**
   * Told of the chunk ids of every file the count meets (a repeated subtree is counted once, so
   * told once); awaited only when it returns a promise.
   */
  onFile?: (chunks: Buffer[]) => Promise<void> | void;
  signal?: AbortSignal;
  /** Stop counting once past this many entries (the result is then > limit). Default: none. */
  limit?: number;
}

/**
 * How many entries a walk below `root` (walkEntries, with the same selection) meets, counting an
 * entry once per path that leads to it, without walking them: each distinct tree is read once and
 * its count remembered (a selected subtree's, as a partly selected one's depends on where it is).
 * Iterative: one frame per level of the deepest path.
 */
export async function expandTree(repo: CountReader, root: Buffer, o: ExpandOptions = {}): Promise<Expansion> {
  const sel = o.selection && !o.selection.everything ? o.selection : undefined;
  const limit = o.limit ?? Infinity;
  const read = o.read ?? ((id: Buffer) => repo.readTree(id));
  const memo = new Map<string, Expansion>();
  interface Frame extends Expansion {
    key: string | undefined; // memo key when the whole subtree is counted
    nodes: CountableTree;
    i: number;
    parts: Buffer[];
    scope: 'all' | 'partial';
  }
  const frame = async (id: Buffer, parts: Buffer[], scope: 'all' | 'partial'): Promise<Frame> => ({
    key: scope === 'all' ? idKey(id) : undefined, nodes: await read(id), i: 0, entries: 0, inodes: 0, parts, scope,
  });
  const stack: Frame[] = [await frame(root, [], sel ? 'partial' : 'all')];
  let done: Expansion = { entries: 0, inodes: 0 };
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.nodes.length || f.entries > limit) {
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
    o.signal?.throwIfAborted();
    const i = f.i++;
    const type = f.nodes.typeAt(i);
    const parts = f.scope === 'all' ? f.parts : [...f.parts, f.nodes.nameAt(i)];
    const s = f.scope === 'all' ? 'all' : sel!.scope(parts);
    if (s === 'none') continue;
    if (type === 'dir') {
      f.entries++;
      f.inodes++;
      const sub = f.nodes.subtreeAt(i);
      if (!sub) continue;
      const known = s === 'all' ? memo.get(idKey(sub)) : undefined;
      if (known) {
        f.entries += known.entries;
        f.inodes += known.inodes;
      } else stack.push(await frame(sub, parts, s));
    } else if (s === 'all') {
      if (o.onFile && type === 'file') {
        const told = o.onFile(f.nodes.chunksAt(i));
        if (told) await told;
      }
      f.entries++;
      const links = f.nodes.linksAt(i);
      f.inodes += type === 'file' && links > 1 ? 1 / links : 1;
    }
  }
  return done;
}

/**
 * The number of entries (paths) below `root`, counting an entry once per path that leads to it;
 * each distinct tree is read once. Stops counting once past `limit` (the result is then > limit).
 */
export async function countPaths(repo: TreeReader, root: Buffer, limit = MAX_EXPANDED_PATHS): Promise<number> {
  return (await expandTree(repo, root, { limit })).entries;
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
  /**
   * A tree's result, once the result of every subtree it names is known: in the memo, and in `subs`
   * (one per directory entry, in order). `path`: the tree's, below the fold's base (with `paths`).
   */
  finish(id: Buffer, hex: string, nodes: Tree, subs: R[], path: Buffer): Promise<R>;
  /** The memo key of a tree at `path` (default: its hex id; a result that depends on where the tree is keys on the path too). */
  key?(hex: string, path: Buffer): string;
  /** Told when a subtree's result is taken from the memo instead of read again. */
  known?(id: Buffer, r: R): Promise<void>;
}

/** Results by key; a memo that forgets (a bounded cache) is fine, as results travel up in `subs`. */
export interface FoldMemo<R> {
  get(key: string): R | undefined;
  set(key: string, r: R): void;
}

/**
 * A bottom-up fold over the trees below `root`: each distinct tree once (results memoized by key,
 * shared across calls with the same memo), subtrees before their parents, with an explicit stack
 * instead of recursion (issue 20: 5,000 levels). For check's affected paths, repair and find.
 * `base`: the root's path, for the paths the steps are given.
 */
export async function foldTrees<R>(root: Buffer, memo: FoldMemo<R>, steps: FoldSteps<R>, base: Buffer = Buffer.alloc(0)): Promise<R> {
  const keyOf = (hex: string, path: Buffer): string => (steps.key ? steps.key(hex, path) : hex);
  interface Frame {
    id: Buffer;
    hex: string;
    key: string;
    path: Buffer;
    nodes?: Tree;
    i: number;
    subs: R[];
  }
  const rootHex = toHex(root);
  const known = memo.get(keyOf(rootHex, base));
  if (known !== undefined) return known;
  const stack: Frame[] = [{ id: root, hex: rootHex, key: keyOf(rootHex, base), path: base, i: 0, subs: [] }];
  let result: R | undefined;
  const done = (r: R): void => {
    const f = stack.pop()!;
    memo.set(f.key, r);
    if (stack.length > 0) stack[stack.length - 1]!.subs.push(r);
    else result = r;
  };
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (!f.nodes) {
      const nodes = await steps.read(f.id, f.hex);
      if (!nodes) {
        done(steps.unreadable(f.id, f.hex));
        continue;
      }
      f.nodes = nodes;
    }
    if (f.i < f.nodes.length) {
      const n = f.nodes.at(f.i++);
      if (n.type === 'dir' && n.tree) {
        const hex = toHex(n.tree);
        const path = steps.key ? walkJoin(f.path, n.name) : f.path;
        const key = keyOf(hex, path);
        const r = memo.get(key);
        if (r !== undefined) {
          await steps.known?.(n.tree, r);
          f.subs.push(r);
        } else stack.push({ id: n.tree, hex, key, path, i: 0, subs: [] });
      }
      continue;
    }
    done(await steps.finish(f.id, f.hex, f.nodes, f.subs, f.path));
  }
  return result!;
}

/** `dir` joined with `name`: just the name below an empty `dir`, no double slash below `/`. */
export function walkJoin(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 0) return name;
  return dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, SLASH, name]);
}

export interface WalkedEntry {
  /** `base` joined with the names down to this entry (just the names when `base` is empty). */
  path: Buffer;
  node: Node;
  /** The entries of the directory it is in (one Tree for all of them). */
  siblings: Tree;
  /** 'all': selected; 'partial': a directory that leads to a selected path (walked for that path only). */
  scope: 'all' | 'partial';
  /**
   * A directory: whether the walk goes into it next (`descend` decided it first). A consumer may set
   * it to false before it asks for the next entry: then its contents are not walked.
   */
  descend: boolean;
}

export interface WalkOptions {
  /** Prefixed to every path (default: none). */
  base?: Buffer;
  /** The paths to walk (default: all): other entries are not met, directories leading to a selected path are. */
  selection?: PathSelection;
  /** Whether to walk into a directory (default: every one). */
  descend?: (node: Node, path: Buffer) => boolean;
  /** Checked before each entry and each read. */
  signal?: AbortSignal;
  /**
   * How a directory's entries are read (default: repo.readTree); `path` is the directory's (`base`
   * for the root). Called when the walk goes into the directory, before any of its entries.
   */
  read?: (id: Buffer, path: Buffer) => Promise<Tree>;
  /** Told when the walk is done with a directory it went into (the root too), after its contents. */
  leave?: () => void;
  /**
   * The ExpansionGuard to report to (diff shares one across a side's walks), or false when the
   * caller counted the expansion itself first (restore, budget.ts). Default: a guard of its own.
   */
  guard?: ExpansionGuard | false;
}

/**
 * The one walk of a snapshot's entries below `root` (ls -R, find's paths, dups, diff's one-sided
 * subtrees, export and restore): depth-first, a directory before its contents, in name order
 * (trees are stored sorted). Iterative, one frame per level, holding only the trees on the current
 * path; guarded against crafted shared subtrees (ExpansionGuard) unless the caller counted first.
 */
export async function* walkEntries(repo: TreeReader, root: Buffer, o: WalkOptions = {}): AsyncGenerator<WalkedEntry> {
  const guard = o.guard === false ? undefined : (o.guard ?? new ExpansionGuard(repo, root));
  const sel = o.selection && !o.selection.everything ? o.selection : undefined;
  const base = o.base ?? Buffer.alloc(0);
  const read = async (id: Buffer, path: Buffer): Promise<Tree> => {
    o.signal?.throwIfAborted();
    const nodes = o.read ? await o.read(id, path) : await repo.readTree(id);
    await guard?.enter(id, nodes);
    return nodes;
  };
  interface Frame {
    nodes: Tree;
    i: number;
    dir: Buffer;
    /** Names from the root: kept only while they matter to the selection. */
    parts: Buffer[];
    scope: 'all' | 'partial';
  }
  const stack: Frame[] = [{ nodes: await read(root, base), i: 0, dir: base, parts: [], scope: sel ? 'partial' : 'all' }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.nodes.length) {
      stack.pop();
      o.leave?.();
      continue;
    }
    o.signal?.throwIfAborted();
    const node = f.nodes.at(f.i++);
    const parts = f.scope === 'all' ? f.parts : [...f.parts, node.name];
    const scope = f.scope === 'all' ? 'all' : sel!.scope(parts);
    if (scope === 'none' || (scope === 'partial' && node.type !== 'dir')) continue;
    const path = walkJoin(f.dir, node.name);
    const e: WalkedEntry = { path, node, siblings: f.nodes, scope, descend: node.type === 'dir' && (o.descend?.(node, path) ?? true) };
    yield e;
    if (e.descend && node.type === 'dir') stack.push({ nodes: node.tree ? await read(node.tree, path) : Tree.EMPTY, i: 0, dir: path, parts, scope });
  }
}
