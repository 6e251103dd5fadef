// A backup's full packs are named (SHA-256 of their bytes) and, in an encrypted repository,
// sealed on the compression threads (store/compress-worker.ts, finishPack) instead of on the
// thread that reads and chunks the files. These tests hold the packs written that way to what the
// calling thread writes: the same bytes under the same names in the clear, sealed blobs that open
// under their names and verify, buffers reused from pack to pack, and a failed write reported.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, toHex } from '../src/core/ids.js';
import { nullSink } from '../src/core/progress.js';
import { openBlob, sealedSize } from '../src/backend/encrypted.js';
import { finishPack } from '../src/store/compress-worker.js';
import { Repository } from '../src/repo/repository.js';
import { checkRepository } from '../src/ops/maintain/check.js';
import { ObjectStore, type ObjectStoreOptions } from '../src/store/object-store.js';
import { packIdFromName, packName } from '../src/store/pack.js';
import { currentHost } from '../src/cli/host.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';
import { Rng } from './torture/lib.js';

afterAll(cleanupScratch);

const PASSWORD = 'pack-finish-pw-31';
const PACK = 128 * 1024;

/** Objects of at least 64 bytes (smaller ones skip the ring), compressible and not, up to 300 KB. */
function objects(rng: Rng, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0) out.push(Buffer.from(`record ${i} of a text that repeats itself\n`.repeat(rng.int(2, 4000))));
    else if (i % 3 === 1) out.push(rng.bytes(rng.int(64, 50_000)));
    else out.push(Buffer.concat([rng.bytes(2000), Buffer.alloc(rng.int(10_000, 300_000), i & 0xff)]));
  }
  return out;
}

async function newRepo(encrypted: boolean): Promise<{ dir: string; repo: Repository; open: () => Promise<Repository> }> {
  const base = scratchDir('snap-pack-finish-');
  const dir = path.join(base, 'repo');
  const host = currentHost();
  const enc = encrypted ? { password: async () => Buffer.from(PASSWORD), indexCache: path.join(base, 'cache') } : {};
  const repo = await Repository.init(
    dir,
    { host, sink: nullSink, ...enc, ...(encrypted ? { encrypt: { password: Buffer.from(PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } } } : {}) },
    { packSize: PACK },
  );
  return { dir, repo, open: () => Repository.open(dir, { host, sink: nullSink, ...enc }) };
}

/** Every pack file: name -> stored bytes. */
function packFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const sub of fs.readdirSync(path.join(dir, 'data'))) {
    for (const f of fs.readdirSync(path.join(dir, 'data', sub))) out.set(`data/${sub}/${f}`, fs.readFileSync(path.join(dir, 'data', sub, f)));
  }
  return out;
}

/** Add every object in order (each accepted before the next), then flush. */
async function addAll(store: ObjectStore, data: Buffer[]): Promise<void> {
  for (const d of data) await store.add('blob', d);
  await store.flush();
}

describe('packs finished on the compression threads', () => {
  it('in the clear: the same pack bytes under the same names as the calling thread writes, each named by its SHA-256', async () => {
    const data = objects(new Rng(41), 240);
    const written: Map<string, Buffer>[] = [];
    // Threads writing one pack at a time, three at a time (as to remote storage), and none.
    for (const [compressWorkers, packWrites] of [[2, 1], [2, 3], [0, 1]] as const) {
      const { dir, repo } = await newRepo(false);
      // A ring larger than the data: objects reach the packs in the order they were added, with
      // worker threads or without, so the packs must come out identical.
      const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: PACK, maxInflightBytes: 64 * 1024 * 1024, compressWorkers, packWrites });
      await addAll(store, data);
      expect(store.stats.packsWritten).toBeGreaterThan(10);
      const files = packFiles(dir);
      for (const [name, bytes] of files) expect(packIdFromName(name)).toBe(toHex(sha256(bytes)));
      // The index records each pack with its size (the bytes moved to a thread and back).
      const sizes = new Map<string, number>();
      for await (const p of repo.index.packs()) sizes.set(packName(p.id), p.size);
      expect(sizes).toEqual(new Map([...files].map(([n, b]) => [n, b.length])));
      written.push(files);
      await repo.close();
    }
    const inline = written[2]!;
    for (const threads of written.slice(0, 2)) {
      expect([...threads.keys()].sort()).toEqual([...inline.keys()].sort());
      for (const [name, bytes] of threads) expect(bytes.equals(inline.get(name)!)).toBe(true);
    }
  });

  it('encrypted: every pack is sealed under its own name and opens to bytes whose SHA-256 is that name; check --read-data finds nothing', async () => {
    const { dir, repo, open } = await newRepo(true);
    const data = objects(new Rng(43), 240);
    await addAll(repo.objects, data);
    expect(repo.objects.stats.packsWritten).toBeGreaterThan(10);
    for (const d of data) expect((await repo.objects.get(repo.hashId(d), 'blob')).equals(d)).toBe(true);
    const keys = { dataKey: repo.unlocked!.master.dataKey };
    const files = packFiles(dir);
    const nonces = new Set<string>();
    for (const [name, sealed] of files) {
      const plain = openBlob(keys, name, sealed).bytes;
      expect(packName(toHex(sha256(plain)))).toBe(name);
      // A pack sealed into a reused buffer still gets a fresh nonce of its own.
      nonces.add(sealed.subarray(0, 32).toString('hex'));
      // Under another name it does not open: the name is authenticated.
      const other = [...files.keys()].find((n) => n !== name)!;
      expect(() => openBlob(keys, other, sealed)).toThrow(/failed authentication/);
    }
    expect(nonces.size).toBe(files.size);
    const sizes = new Map<string, number>();
    for await (const p of repo.index.packs()) sizes.set(packName(p.id), p.size);
    expect(sizes).toEqual(new Map([...files].map(([n, b]) => [n, openBlob(keys, n, b).bytes.length])));
    await repo.close();
    const r = await open();
    try {
      const report = await checkRepository(r, { readData: { kind: 'all' }, sink: nullSink });
      expect(report.problems).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('encrypted, three packs written at once: every pack opens and verifies', async () => {
    const { repo, open } = await newRepo(true);
    const store = new ObjectStore(repo.backend, repo.indexFiles, {
      codec: 'zstd', level: 3, packSize: PACK, compressWorkers: 2, packWrites: 3, codecContext: repo.objects.ctx,
      sealing: (repo.backend as unknown as { sealing(): NonNullable<ObjectStoreOptions['sealing']> }).sealing(),
    });
    const data = objects(new Rng(45), 240);
    await addAll(store, data);
    expect(store.stats.packsWritten).toBeGreaterThan(10);
    await repo.close();
    const r = await open();
    try {
      for (const d of data) expect((await r.objects.get(r.hashId(d), 'blob')).equals(d)).toBe(true);
      expect((await checkRepository(r, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('storage that signs the SHA-256 of what it gets (S3) is handed it with every pack, computed by the threads: in the clear and sealed', async () => {
    for (const encrypted of [false, true]) {
      const { repo } = await newRepo(encrypted);
      // The storage under the encryption (or the only one): it wants the hash, and records what it got.
      const inner = (encrypted ? (repo.backend as unknown as { inner: typeof repo.backend }).inner : repo.backend) as typeof repo.backend & { wantsSha256?: boolean };
      const put = inner.put.bind(inner);
      const hinted: { name: string; ok: boolean }[] = [];
      Object.defineProperty(inner, 'wantsSha256', { value: true });
      inner.put = async (name: string, bytes: Uint8Array, hints?: { sha256?: Uint8Array }) => {
        if (name.startsWith('data/')) hinted.push({ name, ok: hints?.sha256 !== undefined && Buffer.from(hints.sha256).equals(sha256(bytes)) });
        return put(name, bytes);
      };
      for (const compressWorkers of [2, 0]) {
        const store = new ObjectStore(repo.backend, repo.indexFiles, {
          codec: 'zstd', level: 3, packSize: PACK, compressWorkers, codecContext: repo.objects.ctx,
          ...(encrypted && compressWorkers > 0 ? { sealing: (repo.backend as unknown as { sealing(): NonNullable<ObjectStoreOptions['sealing']> }).sealing() } : {}),
        });
        await addAll(store, objects(new Rng(compressWorkers + (encrypted ? 60 : 50)), 90));
        expect(store.stats.packsWritten).toBeGreaterThan(3);
      }
      // Encrypted and without threads, the pack goes through EncryptedBackend.put, which seals it
      // there and has no hash of the sealed bytes to give: the storage hashes them itself.
      const expected = encrypted ? hinted.filter((h) => h.ok).length : hinted.length;
      expect(hinted.length).toBeGreaterThan(6);
      expect(hinted.filter((h) => h.ok).length).toBe(expected);
      expect(expected).toBeGreaterThan(3);
      await repo.close();
    }
  });

  it('packs of file data never move between the threads: they are filled and sealed in shared buffers the process reuses, store after store', async () => {
    for (const encrypted of [false, true]) {
      const { repo, open } = await newRepo(encrypted);
      const inner = (encrypted ? (repo.backend as unknown as { inner: typeof repo.backend }).inner : repo.backend) as typeof repo.backend;
      const put = inner.put.bind(inner);
      const buffers = new Set<ArrayBufferLike>();
      let packs = 0;
      inner.put = async (name: string, bytes: Uint8Array, hints?: { sha256?: Uint8Array }) => {
        if (name.startsWith('data/')) {
          packs++;
          buffers.add(bytes.buffer);
        }
        return put(name, bytes, hints);
      };
      const all: Buffer[] = [];
      // As a watch does: one store after another, each writing several packs.
      for (let i = 0; i < 4; i++) {
        const store = new ObjectStore(repo.backend, repo.indexFiles, {
          codec: 'zstd', level: 3, packSize: PACK, compressWorkers: 2, codecContext: repo.objects.ctx,
          ...(encrypted ? { sealing: (repo.backend as unknown as { sealing(): NonNullable<ObjectStoreOptions['sealing']> }).sealing() } : {}),
        });
        const data = objects(new Rng(70 + i + (encrypted ? 10 : 0)), 60);
        await addAll(store, data);
        all.push(...data);
      }
      expect(packs).toBeGreaterThan(12);
      // What storage got is a view of a shared buffer (the pack's, or its sealed form's), and a
      // few of them served every pack: a new buffer per pack or per store would be one per pack.
      for (const b of buffers) expect(b).toBeInstanceOf(SharedArrayBuffer);
      expect(buffers.size).toBeLessThanOrEqual(3);
      await repo.close();
      const r = await open();
      try {
        for (const d of all) expect((await r.objects.get(r.hashId(d), 'blob')).equals(d)).toBe(true);
        expect((await checkRepository(r, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
      } finally {
        await r.close();
      }
    }
  });

  it('slow storage: one pack of file data fills while the others are written, never two (at most packWrites + 1 buffers)', async () => {
    for (const packWrites of [1, 2]) {
      const { repo, open } = await newRepo(false);
      const inner = repo.backend;
      const put = inner.put.bind(inner);
      const held = new Set<ArrayBufferLike>();
      let packs = 0;
      inner.put = async (name: string, bytes: Uint8Array, hints?: { sha256?: Uint8Array }) => {
        if (name.startsWith('data/')) {
          packs++;
          held.add(bytes.buffer);
          await new Promise((r) => setTimeout(r, 40)); // the storage is behind: full packs queue up
        }
        return put(name, bytes, hints);
      };
      const store = new ObjectStore(repo.backend, repo.indexFiles, { codec: 'zstd', level: 3, packSize: PACK, compressWorkers: 2, packWrites, codecContext: repo.objects.ctx });
      // Incompressible: every object fills its pack as much as it is long. Objects under 64 bytes
      // skip the ring: the caller appends them itself, here while the store appends the ring's
      // and waits for a write slot with a full pack.
      const large = Array.from({ length: 120 }, (_, i) => new Rng(300 + i).bytes(20_000 + i));
      const tiny = Array.from({ length: 60 }, (_, i) => new Rng(500 + i).bytes(20 + (i % 40)));
      for (const d of large) await store.add('blob', d);
      for (const d of tiny) {
        await new Promise((r) => setTimeout(r, 5));
        await store.add('blob', d);
      }
      await store.flush();
      const data = [...large, ...tiny];
      expect(packs).toBeGreaterThan(12);
      // Each buffer storage saw was a pack's, reused: as many as were held at once. A full pack
      // waiting for a write slot while another was written let a third fill (packWrites + 2).
      expect(held.size).toBeLessThanOrEqual(packWrites + 1);
      await repo.close();
      const r = await open();
      try {
        for (const d of data) expect((await r.objects.get(r.hashId(d), 'blob')).equals(d)).toBe(true);
      } finally {
        await r.close();
      }
    }
  });

  it('a pack in a shared buffer with room for its tags is sealed where it is: no second buffer, the sealed bytes open to the pack its id names', () => {
    const keys = { dataKey: Buffer.alloc(32, 9) };
    const rng = new Rng(91);
    for (const length of [100, 200_000, 3 * 65536]) {
      const sab = new SharedArrayBuffer(2 * length + 1024);
      const plain = rng.bytes(length);
      plain.copy(Buffer.from(sab));
      const r = finishPack({ buffer: sab, length, keys, inPlace: true, hashSealed: true });
      expect(r.transfer).toEqual([]);
      expect(r.result.id).toBe(toHex(sha256(plain)));
      expect(r.result.sealed?.inPlace).toBe(true);
      expect(r.result.sealed?.buffer).toBeUndefined();
      expect(r.result.sealed?.length).toBe(sealedSize(length));
      const sealed = Buffer.from(sab, 0, sealedSize(length));
      expect(Buffer.from(r.result.sealed!.sha256!).equals(sha256(sealed))).toBe(true);
      expect(openBlob(keys, packName(r.result.id), Buffer.from(sealed)).bytes.equals(plain)).toBe(true);
    }
  });

  it('a pack whose write fails (after the thread sealed it) fails the flush with the error; no index entry names it', async () => {
    const { repo } = await newRepo(true);
    let puts = 0;
    const inner = (repo.backend as unknown as { inner: typeof repo.backend }).inner;
    const put = inner.put.bind(inner);
    inner.put = async (name: string, bytes: Uint8Array) => {
      if (name.startsWith('data/') && ++puts === 3) throw new Error('disk on fire');
      return put(name, bytes);
    };
    let failed: unknown;
    try {
      await addAll(repo.objects, objects(new Rng(47), 120));
    } catch (e) {
      failed = e;
    }
    expect(String(failed)).toContain('disk on fire');
    await repo.objects.settle();
    // Every pack the index names exists; the failed one is named nowhere.
    let indexed = 0;
    for await (const p of repo.index.packs()) {
      indexed++;
      expect(await repo.backend.exists(packName(p.id))).toBe(true);
    }
    expect(indexed).toBeGreaterThanOrEqual(2);
    await repo.close();
  });
});
