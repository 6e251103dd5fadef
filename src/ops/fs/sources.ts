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
  const sources: string[] = [];
  const dropped: string[] = [];
  for (const p of abs) {
    const outer = sources.find((s) => s === '/' || p.startsWith(s + '/'));
    if (outer) dropped.push(p);
    else sources.push(p);
  }
  return { sources, dropped };
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
