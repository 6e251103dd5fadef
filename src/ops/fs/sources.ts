// Source paths of a backup: made absolute, de-duplicated, and nested ones dropped (the outer
// source already contains them). They are arranged as a tree of path components so the snapshot's
// root tree mirrors the absolute paths (restore puts each at TARGET/<path without leading slash>).
import * as path from 'node:path';

export interface SourceTrie {
  children: Map<string, SourceTrie>;
  /** Set when this node is itself a backed-up path. */
  source?: string;
}

export function normalizeSources(paths: string[], cwd: string): { sources: string[]; dropped: string[] } {
  const abs = [...new Set(paths.map((p) => path.resolve(cwd, p)))].sort();
  const kept = new Set<string>();
  const sources: string[] = [];
  const dropped: string[] = [];
  // Sorted, a folder comes before everything in it: a path is dropped when one of its folders is
  // kept. Each path's folders are looked up (a comparison with every source kept took 3.8 s for
  // 10,000 paths of a --files-from list and 49 s for 40,000).
  for (const p of abs) {
    if (insideOneOf(kept, p)) dropped.push(p);
    else {
      sources.push(p);
      kept.add(p);
    }
  }
  return { sources, dropped };
}

/** Whether a folder above the absolute path `p` (not `p` itself) is in `folders`. */
function insideOneOf(folders: Set<string>, p: string): boolean {
  if (p !== '/' && folders.has('/')) return true;
  for (let i = p.indexOf('/', 1); i > 0; i = p.indexOf('/', i + 1)) if (folders.has(p.slice(0, i))) return true;
  return false;
}

export function buildTrie(sources: string[]): SourceTrie {
  const root: SourceTrie = { children: new Map() };
  for (const s of sources) {
    let node = root;
    for (const part of s.split('/').filter(Boolean)) {
      let next = node.children.get(part);
      if (!next) node.children.set(part, (next = { children: new Map() }));
      node = next;
    }
    node.source = s;
  }
  return root;
}
