// gc's pruning of the files cache (LevelIndex.pruneFilesCache): a file's entry goes when one of its
// chunks is not kept, a folder's record when its tree is not; the rest stays as it was, whatever
// bytes the folders' paths hold (a path may hold 0x01, the byte that ends a folder's record key).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type CachedFile, packCachedFiles } from '../src/index/files-cache.js';
import { LevelIndex } from '../src/index/level-index.js';

const id = (s: string): Buffer => createHash('sha256').update(s).digest();
const file = (chunks: Buffer[]): CachedFile => ({ size: 10, mtimeNs: 1n, ctimeNs: 2n, ino: 3n, dev: 4n, chunks });

describe('LevelIndex.pruneFilesCache', () => {
  it('drops the entries naming an object not kept and the records of trees not kept; keeps the rest', async () => {
    const idx = LevelIndex.inMemory('/nowhere');
    const [c1, c2, c3, t1, t2] = ['c1', 'c2', 'c3', 't1', 't2'].map(id) as [Buffer, Buffer, Buffer, Buffer, Buffer];
    const a = Buffer.from('/a');
    const odd = Buffer.from('/a\x01b'); // a folder whose name holds 0x01
    await idx.putFilesInDirs([
      { dir: a, files: packCachedFiles([[Buffer.from('x'), file([c1])], [Buffer.from('y'), file([c2, c3])], [Buffer.from('empty'), file([])]]), stale: [], record: { digest: id('d1'), tree: t2 } },
      { dir: odd, files: packCachedFiles([[Buffer.from('z'), file([c1, c2])]]), stale: [], record: { digest: id('d2'), tree: t1 } },
    ]);
    const kept = new Set([c1, c2, t1].map((b) => b.toString('hex')));
    const dropped = await idx.pruneFilesCache((x) => kept.has(x.toString('hex')));
    expect(dropped).toBe(2); // y (c3) and /a's record (t2)
    expect([...(await idx.filesInDir(a)).keys()].sort()).toEqual(['empty', 'x']);
    expect((await idx.filesInDir(a)).get('x')!.chunks).toEqual([c1]);
    expect([...(await idx.filesInDir(odd)).keys()]).toEqual(['z']);
    expect(await idx.getDirRecord(a)).toBeUndefined();
    expect(await idx.getDirRecord(odd)).toEqual({ digest: id('d2'), tree: t1 });
    // Nothing kept: everything naming an object goes; an entry of an empty file names none.
    expect(await idx.pruneFilesCache(() => false)).toBe(3);
    expect([...(await idx.filesInDir(a)).keys()]).toEqual(['empty']);
    expect(await idx.getDirRecord(odd)).toBeUndefined();
  });
});
