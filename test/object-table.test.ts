// The check's table of every object's location (src/index/object-table.ts): found as the index
// finds them, a size beyond the limits refused as a lookup refuses it; and read from a real index,
// answering every lookup of a real repository as LevelIndex.lookup does.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { isSnapError } from '../src/core/errors.js';
import { nullSink } from '../src/core/progress.js';
import { ObjectTable } from '../src/index/object-table.js';
import { Repository } from '../src/repo/repository.js';
import type { ObjectLocation } from '../src/store/object-store.js';
import { cleanupScratch, create, scratchDir } from './helpers/maint.js';
import { snap } from './helpers/cli.js';

afterAll(cleanupScratch);

const id = (s: string): Buffer => createHash('sha256').update(s).digest();
const loc = (i: number, type: 'blob' | 'tree' = 'blob'): ObjectLocation => ({ pack: `p${i % 7}`.padEnd(64, '0'), type, offset: i * 100, length: 50 + i, rawLength: 60 + i, codec: i % 3 });

describe('ObjectTable', () => {
  it('finds every object it holds, with its location, and nothing else; ids sharing their first four bytes are told apart', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => id(`o${i}`));
    // Ids that share a prefix: the same first four bytes, different after.
    for (let i = 0; i < 5; i++) ids.push(Buffer.concat([ids[0]!.subarray(0, 4), id(`same-head-${i}`).subarray(4)]));
    const sorted = ids.map((b, i) => ({ b, l: loc(i, i % 5 ? 'blob' : 'tree') })).sort((x, y) => Buffer.compare(x.b, y.b));
    const t = new ObjectTable();
    for (const { b, l } of sorted) t.add(b, l);
    expect(t.size).toBe(sorted.length);
    for (const { b, l } of sorted) expect(t.find(b)).toEqual(l);
    for (let i = 0; i < 500; i++) expect(t.find(id(`absent${i}`))).toBeUndefined();
    expect(t.find(Buffer.concat([ids[0]!.subarray(0, 4), Buffer.alloc(28)]))).toBeUndefined();
    expect(t.find(Buffer.alloc(16))).toBeUndefined();
    expect([...t.entries()].map(([b]) => b.toString('hex'))).toEqual(sorted.map(({ b }) => b.toString('hex')));
  });

  it('refuses ids out of order, and a claimed size beyond the limits when it is looked up (as lookup does)', () => {
    const t = new ObjectTable({ blob: 1000, tree: 2000 });
    const [a, b] = [id('a'), id('b')].sort(Buffer.compare);
    t.add(a!, { ...loc(1), rawLength: 999 });
    t.add(b!, { ...loc(2), rawLength: 5000 });
    expect(() => t.add(a!, loc(3))).toThrow(/out of order/);
    expect(t.find(a!)?.rawLength).toBe(999);
    let err: unknown;
    try {
      t.find(b!);
    } catch (e) {
      err = e;
    }
    expect(isSnapError(err, 'SNAP_CORRUPT'), String(err)).toBe(true);
  });

  it("read from a real repository's index: answers every object as LevelIndex.lookup does", async () => {
    const base = scratchDir('snap-object-table-');
    const repo = path.join(base, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, i % 2 ? 'd' : '', `f${i}`), `${i}\n`.repeat(i * 500 + 1));
    create(repo, src);
    const r = await Repository.open(repo, { host: currentHost(), sink: nullSink });
    try {
      const t = await r.index.objectTable();
      let n = 0;
      for await (const [oid, l] of r.index.objects()) {
        expect(t.find(oid)).toEqual(l);
        expect(await r.index.lookup(oid)).toEqual(l);
        n++;
      }
      expect(t.size).toBe(n);
      expect(n).toBeGreaterThan(20);
    } finally {
      await r.close();
    }
  });
});
