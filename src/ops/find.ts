// `snap find PATTERN`: which snapshots hold paths matching a glob. Glob syntax is the exclude
// syntax (src/model/exclude.ts); what it is matched against follows restic's `find`:
//   no `/` in the pattern      -> the entry's name (`*.txt` matches at any depth);
//   a leading `/`              -> the whole path from the snapshot root (`/home/*/notes.txt`);
//   a `/` elsewhere            -> the end of the path, on a component boundary (`src/*.ts`);
//   a trailing `/`             -> directories only.
// Snapshots of one source share most of their trees, so the matches below a tree are computed
// once and reused in every snapshot that holds the same tree (keyed by tree id, plus the path
// when the pattern looks at more than names).
import { displayPath, joinPath } from '../core/bytes.js';
import { SnapError } from '../core/errors.js';
import { toHex } from '../core/ids.js';
import { compileExcludes, isExcluded, type ExcludeRule } from '../model/exclude.js';
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { TreeReader } from './diff.js';

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

export class FindCache {
  private map = new Map<string, Rel[]>();
  private held = 0;
  treesRead = 0;

  get(key: string): Rel[] | undefined {
    return this.map.get(key);
  }

  set(key: string, v: Rel[]): void {
    if (this.held + v.length + this.map.size > CACHE_BUDGET) {
      this.map.clear();
      this.held = 0;
    }
    this.map.set(key, v);
    this.held += v.length;
  }
}

async function matchesUnder(repo: TreeReader, fp: FindPattern, tree: Buffer, dir: Buffer, cache: FindCache): Promise<Rel[]> {
  const key = fp.byName ? toHex(tree) : `${toHex(tree)}\0${dir.toString('latin1')}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const out: Rel[] = [];
  cache.treesRead++;
  for (const node of await repo.readTree(tree)) {
    const path = joinPath(dir, node.name);
    if (matchesPath(fp, path, node.type === 'dir')) out.push({ rel: node.name, node });
    if (node.type === 'dir') {
      for (const m of await matchesUnder(repo, fp, node.tree!, path, cache)) {
        out.push({ rel: Buffer.concat([node.name, Buffer.from('/'), m.rel]), node: m.node });
      }
    }
  }
  cache.set(key, out);
  return out;
}

/** The matching entries of each snapshot that has any, in the order given (a directory before its contents). */
export async function* findInSnapshots(repo: TreeReader, snaps: StoredSnapshot[], pattern: FindPattern, cache = new FindCache()): AsyncGenerator<FindHit> {
  const root = Buffer.from('/');
  for (const snapshot of snaps) {
    const rels = await matchesUnder(repo, pattern, snapshot.tree, root, cache);
    if (rels.length > 0) yield { snapshot, matches: rels.map((m) => ({ path: Buffer.concat([root, m.rel]), node: m.node })) };
  }
}
