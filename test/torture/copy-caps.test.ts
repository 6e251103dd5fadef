// `snap copy` of a directory at the entry cap (issue 20, "entries per tree, streamed, never all in
// memory"): a keyed copy rewrites every tree with new ids, and a destination with its own chunker
// seed re-chunks every file. Both must stream a tree's entries through its view and write the new
// tree entry by entry; holding a million entries as objects took ~700 MB of heap. A crafted plain
// repository whose /x holds 1,000,000 files (each one chunk, from a handful of distinct blobs) and
// a subdirectory is copied into an encrypted repository by the built CLI with its JavaScript heap
// capped; the copy is then read entry by entry and compared with what was made.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeCbor } from '../../src/model/cbor.js';
import { MAX_TREE_ENTRIES } from '../../src/model/tree.js';
import { Repository } from '../../src/repo/repository.js';
import { Rng } from '../helpers/rng.js';
import { cleanupTmp, cliOk, tmpDir } from './lib.js';
import { cliRss, dirNode, fileNode, noCrash, putObjects, putSnapshot, treeBytes, zstdFrame } from './crafted-lib.js';
import { currentHost } from '../../src/cli/host.js';

afterAll(cleanupTmp);

/** Entries of /x: the subdirectory `d` first, then files `f0000000`, `f0000001`, ... */
const N = MAX_TREE_ENTRIES;
/** Distinct file contents (one chunk each, smaller than any chunker's minimum: never cut). */
const BLOBS = 16;
/**
 * The copy's JavaScript heap, capped (--max-old-space-size): far below the ~700 MB a million entries
 * took as objects, well above what the copy needs when it streams (the source tree and the new one
 * are Buffers, outside this heap).
 */
const HEAP_MIB = 160;
/** Peak RSS allowed to the copy (361 MiB measured): the source tree (114 MB), the tree written, what storing it takes. */
const RSS_MIB = 500;

const fileName = (i: number): Buffer => Buffer.from(`f${String(i).padStart(7, '0')}`, 'latin1');
/** The blob of file `i` (sizes 1,000-4,000 bytes: the size is a CBOR head of 2 bytes). */
const blobOf = (i: number): number => (i * 7) % BLOBS;

/**
 * The CBOR of /x (`{v: 1, entries: [...]}` with a 4-byte array count) in pieces of about 16 MiB:
 * `dir` then files 0 .. N-2, file i having the chunk `ids[blobOf(i)]` and its size.
 */
function* xTreePieces(dir: Buffer, ids: Buffer[], sizes: number[]): Generator<Buffer> {
  const n = N;
  yield Buffer.concat([treeBytes([]).subarray(0, -1), Buffer.from([0x9a, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])]);
  yield encodeCbor(dirNode('d', dir));
  const tpl = encodeCbor(fileNode(Buffer.from('NNNNNNNN'), [Buffer.alloc(32, 0xcc)], 0x1234));
  const nameAt = tpl.indexOf('NNNNNNNN');
  const chunkAt = tpl.indexOf(Buffer.alloc(32, 0xcc));
  const sizeAt = tpl.indexOf(Buffer.from([0x19, 0x12, 0x34])) + 1;
  expect([nameAt, chunkAt, sizeAt].every((x) => x > 0)).toBe(true);
  const per = Math.floor((16 << 20) / tpl.length);
  for (let i = 0; i < n - 1; ) {
    const k = Math.min(per, n - 1 - i);
    const piece = Buffer.allocUnsafe(k * tpl.length);
    for (let j = 0; j < k; j++, i++) {
      const at = j * tpl.length;
      tpl.copy(piece, at);
      fileName(i).copy(piece, at + nameAt);
      ids[blobOf(i)]!.copy(piece, at + chunkAt);
      piece.writeUInt16BE(sizes[blobOf(i)]!, at + sizeAt);
    }
    yield piece;
  }
}

describe('snap copy of a directory at the entry cap', () => {
  it(`a plain snapshot whose /x holds ${N} entries is copied into an encrypted repository (re-identified and re-chunked) with a ${HEAP_MIB} MiB heap, and every entry arrives with its name, size and new chunk id`, async () => {
    const base = tmpDir('snap-copy-caps-');
    const src = path.join(base, 'src');
    const dst = path.join(base, 'dst');
    const env = { SNAP_PASSWORD: 'copy-caps-pw', SNAP_KDF_SCRYPT_N: '1024', XDG_CACHE_HOME: path.join(base, 'cache') };
    await cliOk(['--repo', src, 'init']);
    await cliOk(['--repo', dst, 'init', '--encrypt'], { env });

    const rng = new Rng(2020);
    const blobs = Array.from({ length: BLOBS }, () => Buffer.from(Array.from({ length: rng.int(1000, 4000) }, () => rng.int(0, 255))));
    const ids = await putObjects(src, 'blob', blobs.map((raw) => ({ raw })));
    const sizes = blobs.map((b) => b.length);
    // The subdirectory: two files (its tree is rewritten too, and /x names its new id).
    const [dir] = await putObjects(src, 'tree', [{ raw: treeBytes([fileNode('a', [ids[0]!], sizes[0]!), fileNode('b', [ids[1]!], sizes[1]!)]) }]);
    let size = 0;
    for (const p of xTreePieces(dir!, ids, sizes)) size += p.length;
    expect(size).toBeLessThan(128 * 1024 * 1024);
    const { frame, id: x } = await zstdFrame(size, xTreePieces(dir!, ids, sizes));
    await putObjects(src, 'tree', [{ id: x, stored: frame, rawLength: size, codec: 2 }]);
    const [root] = await putObjects(src, 'tree', [{ raw: treeBytes([dirNode('x', x)]) }]);
    await putSnapshot(src, root!);
    await cliOk(['--repo', src, 'index', 'rebuild']);

    const r = await cliRss(['--repo', dst, '--json', 'copy', '--from-repo', src], { env: { ...env, NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB}` }, timeoutMs: 1_200_000 });
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(noCrash(r.stderr), r.stderr.slice(-3000)).toEqual([]);
    const c = JSON.parse(r.stdout) as { copied: unknown[]; reidentified: boolean; rechunked: boolean };
    expect([c.copied.length, c.reidentified, c.rechunked]).toEqual([1, true, true]);
    console.info(`[torture] copy of a directory of ${N} entries, heap capped at ${HEAP_MIB} MiB: peak RSS ${r.rssMiB.toFixed(0)} MiB`);
    expect(r.rssMiB, 'peak RSS of the copy (MiB)').toBeLessThan(RSS_MIB);

    // The copy, entry by entry through the destination's own reader (a view: nothing is held whole).
    const repo = await Repository.open(dst, { host: currentHost(), sink: {}, password: async () => Buffer.from(env.SNAP_PASSWORD), indexCache: path.join(env.XDG_CACHE_HOME, 'snap', 'index') });
    try {
      const [snap] = await repo.listSnapshots();
      const want = blobs.map((b) => repo.hashId(b));
      // The destination's ids are its own (keyed): none is the source's.
      expect(want.some((w) => ids.some((i) => i.equals(w)))).toBe(false);
      const top = await repo.readTree(snap!.tree);
      expect(top.length).toBe(1);
      const xv = await repo.readTree(top.at(0).tree!);
      expect(xv.length).toBe(N);
      const d = xv.at(0);
      expect([d.name.toString(), d.type]).toEqual(['d', 'dir']);
      const dv = await repo.readTree(d.tree!);
      expect([...dv].map((e) => [e.name.toString(), e.size, e.chunks!.map((k) => k.toString('hex'))])).toEqual([
        ['a', sizes[0], [want[0]!.toString('hex')]],
        ['b', sizes[1], [want[1]!.toString('hex')]],
      ]);
      const wrong: string[] = [];
      for (let i = 0; i < N - 1 && wrong.length < 5; i++) {
        const e = xv.at(i + 1);
        const k = blobOf(i);
        if (!e.name.equals(fileName(i)) || e.type !== 'file' || e.size !== sizes[k] || e.chunks?.length !== 1 || !e.chunks[0]!.equals(want[k]!)) {
          wrong.push(`entry ${i + 1}: ${e.name.toString('latin1')} ${e.type} ${e.size} ${e.chunks?.map((b) => b.toString('hex')).join(',')}`);
        }
      }
      expect(wrong).toEqual([]);
      // Every chunk is stored under its new id with the blob's bytes.
      for (let k = 0; k < BLOBS; k++) expect((await repo.objects.get(want[k]!, 'blob')).equals(blobs[k]!)).toBe(true);
    } finally {
      await repo.close();
    }
    // And the destination is whole: every object it names is there and reads back.
    await cliOk(['--repo', dst, 'check', '--read-data'], { env, timeoutMs: 1_200_000 });
    // A file restored from the copy has its bytes.
    const out = path.join(base, 'out');
    await cliOk(['--repo', dst, 'restore', 'latest', out, '--include', '/x/f0765432'], { env, timeoutMs: 600_000 });
    expect(fs.readFileSync(path.join(out, 'x', 'f0765432')).equals(blobs[blobOf(765_432)]!)).toBe(true);
  }, 3_000_000);
});
