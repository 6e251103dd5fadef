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
import { compileExcludes, isExcluded, type ExcludeRule } from '../../model/exclude.js';
import type { Node } from '../../model/node.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import { ExpansionGuard, type FoldSteps, type TreeReader, foldTrees } from '../tree/walk.js';

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

/**
 * The matches below `root`, each tree's computed once (and cached): the snapshot's bottom-up fold
 * (ops/tree/walk.ts foldTrees, iterative: one frame per level, issue 20), each tree read reported
 * to the expansion guard, and a shared subtree found in the cache counted as read again.
 */
async function matchesUnder(repo: TreeReader, fp: FindPattern, root: Buffer, rootDir: Buffer, cache: FindCache): Promise<Rel[]> {
  const guard = new ExpansionGuard(repo, root);
  const steps: FoldSteps<Cached> = {
    read: async (tree) => {
      cache.treesRead++;
      const nodes = await repo.readTree(tree);
      await guard.enter(tree, nodes);
      return nodes;
    },
    unreadable: () => ({ rels: [], dirs: false }), // not reached: read throws
    key: fp.byName ? undefined : (hex, dir) => `${hex}\0${dir.toString('latin1')}`,
    known: async (tree, cached) => {
      if (cached.dirs) await guard.enter(tree, true); // a shared subtree: counted like one read again
    },
    finish: async (_tree, _hex, nodes, subs, dir) => {
      const out: Rel[] = [];
      let k = 0;
      for (const node of nodes) {
        if (matchesPath(fp, joinPath(dir, node.name), node.type === 'dir')) out.push({ rel: node.name, node });
        if (node.type !== 'dir' || !node.tree) continue;
        for (const m of subs[k++]!.rels) out.push({ rel: Buffer.concat([node.name, SLASH, m.rel]), node: m.node });
      }
      return { rels: out, dirs: nodes.hasDirs };
    },
  };
  return (await foldTrees(root, cache, steps, rootDir)).rels;
}

const SLASH = Buffer.from('/');

/** The matching entries of each snapshot that has any, in the order given (a directory before its contents). */
export async function* findInSnapshots(repo: TreeReader, snaps: StoredSnapshot[], pattern: FindPattern, cache = new FindCache()): AsyncGenerator<FindHit> {
  const root = Buffer.from('/');
  for (const snapshot of snaps) {
    const rels = await matchesUnder(repo, pattern, snapshot.tree, root, cache);
    if (rels.length > 0) yield { snapshot, matches: rels.map((m) => ({ path: Buffer.concat([root, m.rel]), node: m.node })) };
  }
}
