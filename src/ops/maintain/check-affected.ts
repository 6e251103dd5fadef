// For check: which snapshots, and which paths in them, use a damaged or missing object. Each tree
// is read at most once (its result is memoized), however many snapshots share it; trees with no
// damage below them cost one map entry.
import { toHex } from '../../core/ids.js';
import { displayName } from '../../core/bytes.js';
import { openTree } from '../../model/tree.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import type { TreeSource } from '../../repo/reachability.js';
import { type FoldSteps, foldTrees } from '../tree/walk.js';

export interface Affected {
  snapshot: string;
  time: string;
  hostname: string;
  /** Affected paths (lossy UTF-8 for display); a path ending in `/` is a directory that cannot be read. */
  paths: string[];
  /** How many paths are affected (paths may list fewer). */
  count: number;
  /** A snapshot written to replace this one (its `original` names this one: `snap repair`, `tag` or `rewrite`), if any. */
  replacement?: string;
}

interface Hit {
  rel: Buffer;
  dir: boolean;
}

interface Under {
  hits: Hit[];
  count: number;
}

const CLEAN: Under = { hits: [], count: 0 };
const SLASH = Buffer.from('/');

/**
 * The snapshots and paths that use a damaged object (`bad`: hex ids), or that are a file whose
 * entry itself is wrong (`badFiles`: `tree/name` in hex, check's 'file-size').
 */
export async function findAffected(src: TreeSource, snaps: StoredSnapshot[], bad: Set<string>, maxPaths: number, badFiles: Set<string> = new Set()): Promise<Affected[]> {
  const memo = new Map<string, Under>();
  const unreadable: Under = { hits: [{ rel: Buffer.alloc(0), dir: true }], count: 1 };

  // Bottom-up, each tree once, no recursion (ops/tree/walk.ts).
  const steps: FoldSteps<Under> = {
    read: async (tree, hex) => {
      if (bad.has(hex)) return undefined;
      try {
        return openTree(await src.objects.get(tree, 'tree'), `tree ${hex.slice(0, 16)}`);
      } catch {
        return undefined;
      }
    },
    unreadable: () => unreadable,
    finish: async (_tree, hex, nodes) => {
      const res: Under = { hits: [], count: 0 };
      for (const n of nodes) {
        if (n.type === 'file' && (n.chunks?.some((c) => bad.has(toHex(c))) || (badFiles.size > 0 && badFiles.has(`${hex}/${n.name.toString('hex')}`)))) {
          res.count++;
          if (res.hits.length < maxPaths) res.hits.push({ rel: n.name, dir: false });
        } else if (n.type === 'dir' && n.tree) {
          const sub = memo.get(toHex(n.tree))!;
          res.count += sub.count;
          for (const h of sub.hits) {
            if (res.hits.length >= maxPaths) break;
            res.hits.push({ rel: h.rel.length ? Buffer.concat([n.name, SLASH, h.rel]) : n.name, dir: h.dir });
          }
        }
      }
      return res.count === 0 ? CLEAN : res;
    },
  };
  const under = (tree: Buffer): Promise<Under> => foldTrees(tree, memo, steps);

  const replacements = replacementsOf(snaps);
  const out: Affected[] = [];
  for (const s of snaps) {
    const u = await under(s.tree);
    if (u.count === 0) continue;
    const a: Affected = {
      snapshot: s.id,
      time: s.time,
      hostname: s.hostname,
      paths: u.hits.map((h) => `/${displayName(h.rel)}${h.dir && h.rel.length ? '/' : ''}`),
      count: u.count,
    };
    const r = replacements.get(s.id);
    if (r) a.replacement = r;
    out.push(a);
  }
  return out;
}

/** original id -> the newest snapshot written to replace it (by `snap repair`, or by `snap tag`/`rewrite`, which also set `original`). */
export function replacementsOf(snaps: StoredSnapshot[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of snaps) if (s.original) out.set(s.original.toString('hex'), s.id);
  return out;
}
