// A backup's source paths (ops/fs/sources.ts): made absolute, de-duplicated, nested ones dropped.
// normalizeSources looks each path's folders up instead of comparing it with every source kept
// (3.8 s for the 10,000 paths of a --files-from list, 49 s for 40,000); it must keep and drop
// exactly what that comparison did.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTrie, normalizeSources } from '../src/ops/fs/sources.js';
import { Rng } from './torture/lib.js';

/** The rule as it was written before: a path is dropped when a kept source is `/` or one of its folders. */
function reference(paths: string[], cwd: string): { sources: string[]; dropped: string[] } {
  const abs = [...new Set(paths.map((p) => path.resolve(cwd, p)))].sort();
  const sources: string[] = [];
  const dropped: string[] = [];
  for (const p of abs) {
    if (sources.find((s) => s === '/' || p.startsWith(s + '/'))) dropped.push(p);
    else sources.push(p);
  }
  return { sources, dropped };
}

describe('normalizeSources', () => {
  it('drops paths inside another source, and only those: names that share a prefix are not inside each other', () => {
    const r = normalizeSources(['/a', '/a b', '/ab', '/a/b', '/a/b/c', '/ab/c', 'rel', '/x/', '/x/../y', '/a'], '/home/u');
    expect(r.sources).toEqual(['/a', '/a b', '/ab', '/home/u/rel', '/x', '/y']);
    expect(r.dropped).toEqual(['/a/b', '/a/b/c', '/ab/c']);
    expect(normalizeSources(['/srv/x', '/', '/etc'], '/')).toEqual({ sources: ['/'], dropped: ['/etc', '/srv/x'] });
    expect(normalizeSources(['/'], '/')).toEqual({ sources: ['/'], dropped: [] });
  });

  it('keeps and drops what the comparison with every source did, on random sets of nested paths', () => {
    const rng = new Rng(61);
    const names = ['a', 'b', 'a b', 'ab', 'a.b', 'z', '\u00e9t\u00e9', 'x\\ff'];
    for (let round = 0; round < 200; round++) {
      const paths = Array.from({ length: rng.int(1, 40) }, () => {
        const depth = rng.int(0, 4);
        const parts = Array.from({ length: depth }, () => names[rng.int(0, names.length - 1)]!);
        const abs = rng.int(0, 3) > 0;
        return (abs ? '/' : '') + parts.join('/') + (rng.int(0, 5) === 0 ? '/' : '');
      });
      expect(normalizeSources(paths, '/w/d')).toEqual(reference(paths, '/w/d'));
    }
  });

  it('a list of 40,000 paths (a --files-from of a large tree), nested ones among them', () => {
    const paths = Array.from({ length: 40_000 }, (_, i) => (i % 1000 === 0 ? `/data/d${i % 100}` : `/data/d${i % 100}/f${i}`));
    const r = normalizeSources(paths, '/');
    // d0 (i = 0, 1000, ...: i % 100 == 0) holds its own files; every other folder's files are sources.
    expect(r.sources).toContain('/data/d0');
    expect(r.sources.filter((s) => s.startsWith('/data/d0/'))).toEqual([]);
    expect(r.sources.length + r.dropped.length).toBe(new Set(paths).size);
    expect(r.dropped.length).toBe(paths.filter((p) => p.startsWith('/data/d0/')).length);
    expect(buildTrie(r.sources).children.get('data')!.children.size).toBe(100);
  });
});
