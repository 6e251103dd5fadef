// A restore's files of several chunks go to the writer threads chunk by chunk (unpacked, verified
// and written at their offsets of a descriptor the main thread holds), like its one-chunk files;
// and objects of every codec reach the threads with the id they are checked against. Real
// repositories, real files, the CLI.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeTree } from './helpers/cli.js';
import { cleanupScratch, create, expectRestores, findObject, packFile, packs, scratchDir, smallRepo } from './helpers/maint.js';
import type { PackEntry } from '../src/store/pack.js';
import { snap } from './helpers/cli.js';
import { Repository } from '../src/repo/repository.js';
import { locate } from '../src/ops/tree/navigate.js';
import { nullSink } from '../src/core/progress.js';
import { currentHost } from '../src/cli/host.js';

afterAll(cleanupScratch);

/** Small files, files of many chunks (128 KiB chunks at most here), a sparse one and an empty one. */
function source(dir: string): void {
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'small.txt'), 'hello world\n'.repeat(300));
  fs.writeFileSync(path.join(dir, 'empty'), '');
  fs.writeFileSync(path.join(dir, 'sub', 'text.log'), Array.from({ length: 120_000 }, (_, i) => `line ${i} of a log ${i % 7}\n`).join(''));
  fs.writeFileSync(path.join(dir, 'sub', 'random.bin'), randomBytes(3 * 1024 * 1024 + 77));
  // Zeros between data: the writer threads leave holes and the file gets its size.
  fs.writeFileSync(path.join(dir, 'sparse.img'), Buffer.concat([randomBytes(300_000), Buffer.alloc(2 * 1024 * 1024), randomBytes(5000), Buffer.alloc(1024 * 1024)]));
}

describe('restore: files of several chunks on the writer threads', () => {
  for (const codec of ['zstd', 'deflate'] as const) {
    it(`${codec}: small files, files of many chunks, sparse and empty files restore byte for byte`, async () => {
      const base = scratchDir('snap-restore-chunks-');
      const repo = await smallRepo(path.join(base, 'repo'), undefined, codec);
      const src = path.join(base, 'src');
      source(src);
      const expected = describeTree(src);
      const s = create(repo, src);
      expectRestores(repo, s.id, src, expected);
    });
  }

  it('a damaged chunk in the middle of a large file: that file is named and not restored (no temporary file left), the others are', async () => {
    const base = scratchDir('snap-restore-chunks-');
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    source(src);
    const s = create(repo, src);
    // A chunk of random.bin other than its first and last: flip a byte of its stored bytes.
    const chunks = await chunkIds(repo, path.join(src, 'sub', 'random.bin'));
    expect(chunks.length).toBeGreaterThan(5);
    const { pack, entry } = await findObject(repo, chunks[3]!);
    const f = packFile(repo, pack);
    const bytes = fs.readFileSync(f);
    bytes[entry.offset + 10]! ^= 0xff;
    fs.chmodSync(f, 0o644);
    fs.writeFileSync(f, bytes);
    const target = path.join(base, 'out');
    const r = snap(['--repo', repo, 'restore', s.id, target]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('random.bin');
    expect(r.stderr).toContain('failed verification');
    const restored = path.join(target, src);
    expect(fs.existsSync(path.join(restored, 'sub', 'random.bin'))).toBe(false);
    expect(fs.readdirSync(path.join(restored, 'sub')).filter((n) => n.startsWith('.snap-'))).toEqual([]);
    expect(fs.readFileSync(path.join(restored, 'sub', 'text.log')).equals(fs.readFileSync(path.join(src, 'sub', 'text.log')))).toBe(true);
    expect(fs.readFileSync(path.join(restored, 'sparse.img')).equals(fs.readFileSync(path.join(src, 'sparse.img')))).toBe(true);
  });

  it('a pack gone from a local repository: the writer threads, which read the objects themselves, name what it held; the rest is restored', async () => {
    const base = scratchDir('snap-restore-chunks-');
    const repo = await smallRepo(path.join(base, 'repo'));
    const r0 = await Repository.open(repo, { host: currentHost(), sink: nullSink });
    try {
      expect(r0.threadReads()).toEqual({ root: repo });
    } finally {
      await r0.close();
    }
    const src = path.join(base, 'src');
    source(src);
    const s = create(repo, src);
    const chunks = await chunkIds(repo, path.join(src, 'sub', 'random.bin'));
    const { pack } = await findObject(repo, chunks[2]!);
    const small = await findObject(repo, (await chunkIds(repo, path.join(src, 'small.txt')))[0]!);
    expect(small.pack).not.toBe(pack);
    fs.rmSync(packFile(repo, pack));
    const target = path.join(base, 'out');
    const r = snap(['--repo', repo, 'restore', s.id, target]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('random.bin');
    expect(r.stderr).toMatch(/not restored, its data is damaged: data\/..\/[0-9a-f]{64} is missing from the repository/);
    const restored = path.join(target, src);
    expect(fs.existsSync(path.join(restored, 'sub', 'random.bin'))).toBe(false);
    expect(fs.readdirSync(path.join(restored, 'sub')).filter((n) => n.startsWith('.snap-'))).toEqual([]);
    expect(fs.readFileSync(path.join(restored, 'small.txt')).equals(fs.readFileSync(path.join(src, 'small.txt')))).toBe(true);
  });

  it('small files in directories the restore makes (handed to the threads without a task each): a pack gone and a damaged object name only their files; the rest restore exactly; no temporaries', async () => {
    const base = scratchDir('snap-restore-quick-');
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    const files = new Map<string, Buffer>();
    for (let d = 0; d < 4; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let i = 0; i < 25; i++) {
        // Below the chunker's minimum: one object each, its id the SHA-256 of the file (a plain repository).
        const b = randomBytes(1000 + d * 997 + i * 61);
        files.set(`d${d}/f${i}`, b);
        fs.writeFileSync(path.join(src, `d${d}`, `f${i}`), b);
      }
    }
    fs.writeFileSync(path.join(src, 'd0', 'empty'), '');
    files.set('d0/empty', Buffer.alloc(0));
    const s = create(repo, src);
    const stored = await packs(repo);
    const where = (b: Buffer): { pack: string; entry: PackEntry } => {
      const id = createHash('sha256').update(b).digest();
      for (const [pack, entries] of stored) {
        const entry = entries.find((e) => e.id.equals(id));
        if (entry) return { pack, entry };
      }
      throw new Error('not stored');
    };
    const gone = where(files.get('d1/f3')!).pack;
    fs.rmSync(packFile(repo, gone));
    const [damagedName, damagedBytes] = [...files].find(([rel, b]) => rel.startsWith('d2/') && where(b).pack !== gone)!;
    const hit = where(damagedBytes);
    const f = packFile(repo, hit.pack);
    const bytes = fs.readFileSync(f);
    bytes[hit.entry.offset + 10]! ^= 0xff;
    fs.chmodSync(f, 0o644);
    fs.writeFileSync(f, bytes);
    // Every file of the damaged object's pack but that one still restores: its other objects are whole.
    const lost = new Set([...files].filter(([rel, b]) => b.length > 0 && (rel === damagedName || where(b).pack === gone)).map(([rel]) => rel));
    expect(lost.size).toBeGreaterThan(1);
    expect(lost.size).toBeLessThan(files.size);

    const target = path.join(base, 'out');
    const r = snap(['--repo', repo, 'restore', s.id, target]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/not restored, its data is damaged: data\/..\/[0-9a-f]{64} is missing from the repository/);
    expect(r.stderr).toContain('failed verification');
    const restored = path.join(target, src);
    for (const [rel, b] of files) {
      const at = path.join(restored, rel);
      if (lost.has(rel)) {
        expect(fs.existsSync(at), rel).toBe(false);
        expect(r.stderr, rel).toContain(at);
      } else expect(fs.readFileSync(at).equals(b), rel).toBe(true);
    }
    for (let d = 0; d < 4; d++) expect(fs.readdirSync(path.join(restored, `d${d}`)).filter((n) => n.startsWith('.snap-'))).toEqual([]);
    // The directories got their metadata once their files were answered.
    // (restore promises the microsecond: docs/restore.md)
    const us = (p: string): bigint => fs.statSync(p, { bigint: true }).mtimeNs / 1000n;
    expect(us(path.join(restored, 'd1'))).toBe(us(path.join(src, 'd1')));
  });
});

/** The chunk ids of a file in the repository's latest snapshot. */
async function chunkIds(repo: string, file: string): Promise<Buffer[]> {
  const r = await Repository.open(repo, { host: currentHost(), sink: nullSink });
  try {
    const snaps = await r.listSnapshots();
    const node = (await locate(r, snaps[snaps.length - 1]!, file)).node;
    if (!node?.chunks) throw new Error(`no chunks for ${file}`);
    return node.chunks;
  } finally {
    await r.close();
  }
}
