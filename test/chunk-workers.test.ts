// Chunking on worker threads (store/chunk-pool.ts, issue 16): a backup whose files are read,
// chunked and hashed on the chunking threads records exactly the chunks (and ids) the in-process
// chunker gives, for every way a file reaches the threads (batched small files, files streamed
// through several windows, chunks cut at the maximum size), in plain and encrypted repositories;
// and a file that fails to read or shrinks while a thread reads it is handled as before.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsEncode } from '../src/core/bytes.js';
import { currentHost } from '../src/core/host.js';
import { randomHex } from '../src/core/ids.js';
import type { ProgressSink } from '../src/core/progress.js';
import { createSnapshot, type CreateOptions } from '../src/ops/backup/create.js';
import { locateAbs } from '../src/ops/tree/navigate.js';
import { Repository } from '../src/repo/repository.js';
import type { Backend } from '../src/backend/backend.js';
import { chunkBuffer } from '../src/store/chunker.js';
import { ChunkPool } from '../src/store/chunk-pool.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';
import { Rng } from './torture/lib.js';

afterAll(cleanupScratch);

const PASSWORD = 'chunk workers test password';
const SMALL_CHUNKS = { algorithm: 'fastcdc-gear32-nc2' as const, minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 };

async function newRepo(encrypted: boolean, chunker?: typeof SMALL_CHUNKS, wrap?: (b: Backend) => Backend): Promise<Repository> {
  const base = scratchDir('snap-chunkw-');
  const cache = { indexCache: path.join(base, 'cache', 'index'), known: path.join(base, 'cache', 'known') };
  const overrides = chunker ? { chunker: encrypted ? chunker : { ...chunker, gearSeed: randomHex(32) } } : {};
  await Repository.init(
    path.join(base, 'repo'),
    { sink: {}, ...(encrypted ? { encrypt: { password: Buffer.from(PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } }, ...cache } : {}) },
    overrides,
  );
  return Repository.open(path.join(base, 'repo'), { sink: {}, ...(encrypted ? { password: async () => Buffer.from(PASSWORD), ...cache } : {}), ...(wrap ? { wrap } : {}) });
}

/** Files of every shape the threads see, by name. */
function corpus(rng: Rng, max: number): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const sizes = [1, 63, 64, 4096, 65_536, 65_537, 300_000, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 5 * 1024 * 1024 + 7, 2 * 1024 * 1024 + max];
  for (const n of sizes) files.set(`random-${n}`, rng.bytes(n));
  for (let i = 0; i < 40; i++) files.set(`small-${i}`, rng.bytes(rng.int(1, 200_000)));
  // No boundary anywhere: every chunk is cut at the maximum size, across windows.
  files.set('zeros', Buffer.alloc(3 * max + 12_345));
  // Repeats: the same content twice in one file and in two files (deduplicated, same ids).
  const half = rng.bytes(3 * 1024 * 1024 + 5);
  files.set('twice', Buffer.concat([half, half]));
  files.set('twice-copy', Buffer.concat([half, half]));
  files.set('empty', Buffer.alloc(0));
  return files;
}

async function backup(repo: Repository, src: string, o: Partial<CreateOptions> = {}, sink: ProgressSink = {}): Promise<Awaited<ReturnType<typeof createSnapshot>>> {
  return createSnapshot(repo, { paths: [src], cwd: '/', host: currentHost(), program: 'test', sink, ...o });
}

async function recorded(repo: Repository, tree: Buffer, file: string): Promise<{ size: number; chunks: string[] }> {
  const at = await locateAbs(repo, tree, fsEncode(file));
  if (!at?.node) throw new Error(`${file} is not in the snapshot`);
  return { size: at.node.size ?? 0, chunks: (at.node.chunks ?? []).map((c) => c.toString('hex')) };
}

describe('chunking on worker threads', () => {
  for (const encrypted of [false, true]) {
    for (const params of [SMALL_CHUNKS, undefined]) {
      const what = `${encrypted ? 'encrypted' : 'plain'} repository, ${params ? 'small chunks' : 'default chunker'}`;
      it(`records the in-process chunker's chunks and ids (${what})`, async () => {
        const rng = new Rng(encrypted ? 16 : 61);
        const src = path.join(scratchDir('snap-chunkw-src-'), 'src');
        fs.mkdirSync(src);
        let files: Map<string, Buffer> | undefined;
        // On the threads (the smallest files too); on the threads with files up to 200 KB read on
        // the calling thread, concurrently with the others; all on the calling thread.
        for (const [workers, inline] of [[2, 0], [2, 200_000], [0, 0]] as const) {
          const repo = await newRepo(encrypted, params);
          try {
            files ??= corpus(rng, repo.gear.max);
            if (!fs.readdirSync(src).length) for (const [n, data] of files) fs.writeFileSync(path.join(src, n), data);
            const r = await backup(repo, src, { chunkWorkers: workers, chunkInline: inline });
            expect(r.warnings).toBe(0);
            for (const [n, data] of files) {
              const want = chunkBuffer(repo.gear, data).map((c) => repo.hashId(c).toString('hex'));
              expect(await recorded(repo, r.snapshot.tree, path.join(src, n)), n).toEqual({ size: data.length, chunks: want });
            }
            // Every chunk is stored and reads back as the file's bytes.
            for (const [n, data] of files) {
              const { chunks } = await recorded(repo, r.snapshot.tree, path.join(src, n));
              const back = Buffer.concat(await Promise.all(chunks.map((c) => repo.objects.get(Buffer.from(c, 'hex'), 'blob'))));
              expect(back.equals(data), n).toBe(true);
            }
          } finally {
            await repo.close();
          }
        }
      }, 120_000);
    }
  }

  it('a second backup on threads finds every chunk already stored (dedup against an in-process backup)', async () => {
    const rng = new Rng(5);
    const repo = await newRepo(false, SMALL_CHUNKS);
    try {
      const src = path.join(scratchDir('snap-chunkw-src-'), 'src');
      fs.mkdirSync(src);
      for (const [n, data] of corpus(rng, repo.gear.max)) fs.writeFileSync(path.join(src, n), data);
      const first = await backup(repo, src, { chunkWorkers: 0 });
      expect(first.snapshot.summary.dataAdded).toBeGreaterThan(0);
      // Touch every file: the files cache no longer vouches for them, so they are read again.
      const later = new Date(Date.now() + 5000);
      for (const n of fs.readdirSync(src)) fs.utimesSync(path.join(src, n), later, later);
      const second = await backup(repo, src, { chunkWorkers: 2, chunkInline: 0 });
      expect(second.snapshot.summary.filesChanged).toBe(first.snapshot.summary.filesNew);
      // Only the directory's tree is new: no blob was stored again (the store's counters add up
      // over the repository object's life, so the second backup's share is the difference).
      const trees = src.split('/').length; // one per folder from / down to src
      expect(second.snapshot.summary.objectsAdded - first.snapshot.summary.objectsAdded).toBeLessThanOrEqual(trees);
      for (const n of fs.readdirSync(src)) {
        expect(await recorded(repo, second.snapshot.tree, path.join(src, n)), n).toEqual(await recorded(repo, first.snapshot.tree, path.join(src, n)));
      }
      expect(second.snapshot.summary.dataAdded - first.snapshot.summary.dataAdded).toBeLessThan(20_000);
    } finally {
      await repo.close();
    }
  }, 120_000);

  // A sysfs attribute that opens and then fails every read with EIO (no runtime power management).
  const eioFile = ['/sys/devices/software/power/autosuspend_delay_ms', '/sys/devices/platform/power/autosuspend_delay_ms'].find((p) => {
    try {
      const fd = fs.openSync(p, 'r');
      try {
        fs.readSync(fd, Buffer.alloc(16), 0, 16, 0);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'EIO' && fs.statSync(p).size > 0;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return false;
    }
  });

  it.skipIf(!eioFile)('a file whose read fails on a thread is a warning with its system code; the rest is backed up', async () => {
    const repo = await newRepo(false, SMALL_CHUNKS);
    try {
      const src = path.join(scratchDir('snap-chunkw-src-'), 'src');
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'fine'), Buffer.alloc(200_000, 7));
      const warnings: { code: string; message: string }[] = [];
      const r = await backup(repo, src, { paths: [src, eioFile!], chunkWorkers: 2, chunkInline: 0 }, { warn: (w) => warnings.push(w) });
      expect(r.warnings).toBe(1);
      expect(warnings.map((w) => w.code)).toEqual(['EIO']);
      expect(warnings[0]!.message).toMatch(/read failed: EIO/);
      expect(await locateAbs(repo, r.snapshot.tree, fsEncode(eioFile!))).toBeUndefined();
      expect((await recorded(repo, r.snapshot.tree, path.join(src, 'fine'))).size).toBe(200_000);
    } finally {
      await repo.close();
    }
  });

  it('a file cut short while a thread reads it: a SNAP_CHANGED warning, and the bytes as read', async () => {
    const rng = new Rng(9);
    const src = path.join(scratchDir('snap-chunkw-src-'), 'src');
    fs.mkdirSync(src);
    const file = path.join(src, 'shrinks');
    const data = rng.bytes(40 * 1024 * 1024);
    fs.writeFileSync(file, data);
    // The first pack written (16 MiB of chunks in: the file is being read) truncates the file.
    let cut = false;
    const wrap = (b: Backend): Backend =>
      new Proxy(b, {
        get(t, k, recv) {
          const v = Reflect.get(t, k, recv) as unknown;
          if (k !== 'put' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
          return async (name: string, bytes: Uint8Array) => {
            if (!cut && name.startsWith('data/')) {
              cut = true;
              fs.truncateSync(file, 0);
            }
            return (v as (n: string, d: Uint8Array) => Promise<void>).call(t, name, bytes);
          };
        },
      });
    const repo = await newRepo(false, undefined, wrap);
    try {
      const warnings: { code: string; message: string }[] = [];
      const r = await backup(repo, src, { chunkWorkers: 2 }, { warn: (w) => warnings.push(w) });
      expect(cut).toBe(true);
      expect(warnings.map((w) => w.code)).toEqual(['SNAP_CHANGED']);
      expect(warnings[0]!.message).toMatch(/changed while it was being read/);
      const got = await recorded(repo, r.snapshot.tree, file);
      expect(got.size).toBeGreaterThan(16 * 1024 * 1024);
      expect(got.size).toBeLessThan(data.length);
      // What was read is the file's start, chunked as the in-process chunker chunks it.
      expect(got.chunks).toEqual(chunkBuffer(repo.gear, data.subarray(0, got.size)).map((c) => repo.hashId(c).toString('hex')));
    } finally {
      await repo.close();
    }
  }, 120_000);

  it('the pool: a read error comes back with its code after the chunks before it', async () => {
    const repo = await newRepo(false, SMALL_CHUNKS);
    try {
      const pool = new ChunkPool(repo.gear, repo.objects.ctx, 2);
      const f = path.join(scratchDir('snap-chunkw-src-'), 'f');
      const data = new Rng(3).bytes(3 * 1024 * 1024);
      fs.writeFileSync(f, data);
      // A descriptor opened for writing only: every read fails with EBADF, on the thread.
      const fd = fs.openSync(f, 'a');
      try {
        const got: Buffer[] = [];
        await expect(pool.file(fd, data.length, async (c) => void got.push(Buffer.from(c)))).rejects.toMatchObject({ code: 'EBADF' });
        expect(got).toEqual([]);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      await repo.close();
    }
  });
});
