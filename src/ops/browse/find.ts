// `snap find PATTERN`: which snapshots hold paths matching a glob. Glob syntax is the exclude
// syntax (src/model/exclude.ts); what it is matched against follows restic's `find`:
//   no `/` in the pattern      -> the entry's name (`*.txt` matches at any depth);
//   a leading `/`              -> the whole path from the snapshot root (`/home/*/notes.txt`);
//   a `/` elsewhere            -> the end of the path, on a component boundary (`src/*.ts`);
//   a trailing `/`             -> directories only.
// Snapshots of one source share most of their trees, so the matches below a tree are computed
// once and reused in every snapshot that holds the same tree (keyed by tree id, plus the path
// when the pattern looks at more than names).
import { displayPath, joinPath } from '../../core/bytes.js';
import { SnapError } from '../../core/errors.js';
import { toHex } from '../../core/ids.js';
import { compileExcludes, isExcluded, type ExcludeRule } from '../../model/exclude.js';
import type { Node } from '../../model/node.js';
import type { Tree } from '../../model/tree.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import { ExpansionGuard, type TreeReader } from '../tree/walk.js';

export interface FindPattern {
  source: string;
  /** The pattern looks only at names, so matches below a tree do not depend on where it is. */
  byName: boolean;
  rules: ExcludeRule[];
}

export function compileFindPattern(pattern: string): FindPattern {
  let p = pattern.trim();
  // `!` and `#` mean something else in exclude files; here they are literal characters.
  if (p.startsWith('!') || p.startsWith('#')) p = `\\${p}`;
  const body = p.endsWith('/') ? p.slice(0, -1) : p;
  const byName = !body.includes('/');
  if (!byName && !p.startsWith('/') && !p.startsWith('**/')) p = `**/${p}`;
  const rules = compileExcludes([p]);
  if (body === '' || rules.length === 0) throw new SnapError('SNAP_USAGE', `not a usable pattern: '${displayPath(pattern)}'`);
  return { source: pattern, byName, rules };
}

/** Whether an absolute snapshot path (raw bytes) matches. */
export function matchesPath(fp: FindPattern, path: Buffer, isDir: boolean): boolean {
  return isExcluded(fp.rules, path.subarray(1).toString('latin1'), isDir);
}

export interface FindMatch {
  path: Buffer;
  node: Node;
}

export interface FindHit {
  snapshot: StoredSnapshot;
  matches: FindMatch[];
}

interface Rel {
  rel: Buffer; // path below the tree, without a leading slash
  node: Node;
}

/** Past this many cached matches the cache starts over, so memory stays bounded on huge results. */
const CACHE_BUDGET = 500_000;

interface Cached {
  rels: Rel[];
  /** The tree has subdirectories: meeting it twice below one root may mean a crafted DAG (ops/tree/walk.ts). */
  dirs: boolean;
}

export class FindCache {
  private map = new Map<string, Cached>();
  private held = 0;
  treesRead = 0;

  get(key: string): Cached | undefined {
    return this.map.get(key);
  }

  set(key: string, v: Cached): void {
    if (this.held + v.rels.length + this.map.size > CACHE_BUDGET) {
      this.map.clear();
      this.held = 0;
    }
    this.map.set(key, v);
    this.held += v.rels.length;
  }
}

interface Frame {
  tree: Buffer;
  dir: Buffer;
  key: string;
  nodes: Tree;
  i: number;
  out: Rel[];
  /** The directory entry whose subtree is being walked (its matches get its name in front). */
  child?: Node;
}

/** The matches below `root`, each tree's computed once (and cached); iterative, one frame per level (issue 20). */
async function matchesUnder(repo: TreeReader, fp: FindPattern, root: Buffer, rootDir: Buffer, cache: FindCache): Promise<Rel[]> {
  const keyOf = (tree: Buffer, dir: Buffer): string => (fp.byName ? toHex(tree) : `${toHex(tree)}\0${dir.toString('latin1')}`);
  const guard = new ExpansionGuard(repo, root);
  const open = async (tree: Buffer, dir: Buffer, key: string): Promise<Frame> => {
    cache.treesRead++;
    const nodes = await repo.readTree(tree);
    await guard.enter(tree, nodes);
    return { tree, dir, key, nodes, i: 0, out: [] };
  };
  const rootKey = keyOf(root, rootDir);
  const hit = cache.get(rootKey);
  if (hit) return hit.rels;
  const stack: Frame[] = [await open(root, rootDir, rootKey)];
  let result: Rel[] = [];
  const addSub = (f: Frame, name: Buffer, sub: Rel[]): void => {
    for (const m of sub) f.out.push({ rel: Buffer.concat([name, Buffer.from('/'), m.rel]), node: m.node });
  };
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.nodes.length) {
      stack.pop();
      cache.set(f.key, { rels: f.out, dirs: f.nodes.hasDirs });
      const parent = stack[stack.length - 1];
      if (parent) addSub(parent, parent.child!.name, f.out);
      else result = f.out;
      continue;
    }
    const node = f.nodes.at(f.i++);
    const path = joinPath(f.dir, node.name);
    if (matchesPath(fp, path, node.type === 'dir')) f.out.push({ rel: node.name, node });
    if (node.type !== 'dir') continue;
    const key = keyOf(node.tree!, path);
    const cached = cache.get(key);
    if (cached) {
      if (cached.dirs) await guard.enter(node.tree!, true); // a shared subtree: counted like one read again
      addSub(f, node.name, cached.rels);
      continue;
    }
    f.child = node;
    stack.push(await open(node.tree!, path, key));
  }
  return result;
}

/** The matching entries of each snapshot that has any, in the order given (a directory before its contents). */
export async function* findInSnapshots(repo: TreeReader, snaps: StoredSnapshot[], pattern: FindPattern, cache = new FindCache()): AsyncGenerator<FindHit> {
  const root = Buffer.from('/');
  for (const snapshot of snaps) {
    const rels = await matchesUnder(repo, pattern, snapshot.tree, root, cache);
    if (rels.length > 0) yield { snapshot, matches: rels.map((m) => ({ path: Buffer.concat([root, m.rel]), node: m.node })) };
  }
}
