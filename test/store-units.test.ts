// Units that only end-to-end tests reached before (issue 17, item 7): the object store's
// compression ring and its worker threads, the restore writer threads, gc's pack rewriter and the
// reachability walk. Each runs against a real repository (LocalBackend, LevelDB index) in a
// temporary folder.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isSnapError } from '../src/core/errors.js';
import { sha256, toHex } from '../src/core/ids.js';
import { nullSink } from '../src/core/progress.js';
import type { Node } from '../src/model/node.js';
import { encodeTree, sortNodes } from '../src/model/tree.js';
import { PackRewriter } from '../src/repo/pack-rewriter.js';
import { markSnapshots, newMarks, walkTrees } from '../src/repo/reachability.js';
import { FileWriter, type WriteJob } from '../src/ops/restore/writer.js';
import { type Job, encode, jobsIn, put } from '../src/ops/restore/wire.js';
import { Repository } from '../src/repo/repository.js';
import { CODEC_RAW, CODEC_ZSTD } from '../src/store/codec.js';
import { encodeObjectSync, objectId, objectWhat } from '../src/store/object-codec.js';
import { ObjectStore } from '../src/store/object-store.js';
import { compressThreadsStarted, giveBackShared, takeShared } from '../src/store/compress-pool.js';
import { packName, type PackEntry, readPackHeader } from '../src/store/pack.js';
import { cleanupScratch, packFile, packs, scratchDir } from './helpers/maint.js';
import { Rng } from './torture/lib.js';
import { currentHost } from '../src/cli/host.js';

afterAll(cleanupScratch);

async function newRepo(packSize = 256 * 1024): Promise<{ dir: string; repo: Repository }> {
  const dir = path.join(scratchDir('snap-units-'), 'repo');
  const repo = await Repository.init(dir, { host: currentHost(), sink: nullSink }, { packSize });
  return { dir, repo };
}

/** Objects of every kind the ring sees: tiny (< 64 bytes), compressible, incompressible, and large. */
function objects(rng: Rng, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    if (kind === 0) out.push(rng.bytes(rng.int(1, 63)));
    else if (kind === 1) out.push(Buffer.from(`line ${i} of some text that repeats\n`.repeat(rng.int(10, 3000))));
    else if (kind === 2) out.push(rng.bytes(rng.int(100, 40_000)));
    else out.push(Buffer.concat([rng.bytes(1000), Buffer.alloc(rng.int(50_000, 300_000), i & 0xff)]));
  }
  return out;
}

/** Every stored object as (id hex) -> its pack entry. */
async function entriesByObject(dir: string): Promise<Map<string, PackEntry & { pack: string }>> {
  const m = new Map<string, PackEntry & { pack: string }>();
  for (const [pack, entries] of await packs(dir)) for (const e of entries) m.set(toHex(e.id), { ...e, pack });
  return m;
}

/**
 * The repository's backend with slow or failing puts: each waits `delayMs` first, and the
 * `failAt`-th one fails with `message`. `puts()`: how many were made.
 */
function withPuts(repo: Repository, o: { delayMs?: number; failAt?: number; message?: string }): { backend: Repository['backend']; puts: () => number } {
  let puts = 0;
  const backend = Object.create(repo.backend) as Repository['backend'];
  backend.put = async (name: string, bytes: Uint8Array) => {
    if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
    if (++puts === o.failAt) throw new Error(o.message);
    return repo.backend.put(name, bytes);
  };
  return { backend, puts: () => puts };
}

describe('ObjectStore: the compression ring and its worker threads', () => {
  it('a ring much smaller than the data (it wraps and fills) stores every object once, exactly as the calling thread would', async () => {
    const rng = new Rng(17);
    const data = objects(rng, 400);
    const results: Map<string, PackEntry & { pack: string }>[] = [];
    for (const compressWorkers of [2, 0]) {
      const { dir, repo } = await newRepo();
      // 256 KiB of ring for ~30 MB of objects: it wraps many times and is often full.
      const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 256 * 1024, maxInflightBytes: 256 * 1024, compressWorkers });
      const added = await Promise.all(data.map((d) => store.add('blob', d)));
      // The same objects again, concurrently: each stored once.
      const again = await Promise.all(data.slice(0, 50).map((d) => store.add('blob', d)));
      await store.flush();
      expect(added.every((a) => a.added)).toBe(true);
      expect(again.every((a) => !a.added)).toBe(true);
      expect(store.stats.objectsAdded).toBe(data.length);
      for (const d of data) expect((await store.get(sha256(d), 'blob')).equals(d)).toBe(true);
      const stored = await entriesByObject(dir);
      expect(stored.size).toBe(data.length);
      // Byte for byte what the object codec gives on the calling thread.
      for (const d of data) {
        const e = stored.get(toHex(sha256(d)))!;
        const c = encodeObjectSync(d, 'zstd', 3);
        expect([e.codec, e.length]).toEqual([c.codec, c.data.length]);
      }
      expect([...stored.values()].some((e) => e.codec === CODEC_ZSTD) && [...stored.values()].some((e) => e.codec === CODEC_RAW)).toBe(true);
      results.push(stored);
      await repo.close();
    }
    // Worker threads or none: the same codec and stored length for every object.
    const [a, b] = results;
    for (const [id, e] of a!) expect([e.codec, e.length, e.rawLength]).toEqual([b!.get(id)!.codec, b!.get(id)!.length, b!.get(id)!.rawLength]);
  });

  it('one store after another reuses the ring: the workers keep every ring they were sent, so new rings piled up', async () => {
    const { repo } = await newRepo();
    const rng = new Rng(23);
    const ring = 16 * 1024 * 1024;
    const before = process.memoryUsage().arrayBuffers;
    // As a watch does: a store per backup, each sending a little to the workers, 40 times.
    for (let i = 0; i < 40; i++) {
      const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 256 * 1024, maxInflightBytes: ring, compressWorkers: 1 });
      for (const d of objects(rng, 8)) await store.add('blob', d);
      await store.flush();
    }
    // A ring each would be 640 MiB of ArrayBuffers the workers hold on to (the main thread's own
    // references are garbage, but the memory is not freed while a worker holds one).
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(3 * ring);
    // The ring back after flush is the one the next store takes.
    const r = takeShared(ring);
    giveBackShared(r);
    const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 256 * 1024, maxInflightBytes: ring, compressWorkers: 1 });
    await store.add('blob', Buffer.from('x'.repeat(1000) + 'a new object'));
    await store.flush();
    expect(takeShared(ring)).toBe(r);
    await repo.close();
  });

  it('settle() after a failed pack write waits for what is under way and never throws; add() then fails', async () => {
    const { repo } = await newRepo();
    const failing = withPuts(repo, { failAt: 2, message: 'disk on fire' }).backend;
    const store = new ObjectStore(failing, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, maxInflightBytes: 128 * 1024, compressWorkers: 2 });
    const rng = new Rng(5);
    let failed: unknown;
    try {
      for (const d of objects(rng, 200)) await store.add('blob', d);
      await store.flush();
    } catch (e) {
      failed = e;
    }
    expect(String(failed)).toContain('disk on fire');
    await store.settle();
    await expect(store.add('blob', randomBytes(1000))).rejects.toThrow('disk on fire');
    await repo.close();
  });

  it('storage slower than compression: add() waits for room in the ring instead of compressing on the calling thread, and every object is stored', async () => {
    const { dir, repo } = await newRepo();
    const { backend: slow, puts } = withPuts(repo, { delayMs: 40 });
    // One pack write at a time, each 40 ms: the ring (128 KiB) fills with compressed objects
    // waiting for a write while both threads are idle.
    const store = new ObjectStore(slow, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, maxInflightBytes: 128 * 1024, compressWorkers: 2, packWrites: 1 });
    const rng = new Rng(29);
    // Incompressible: about 60 packs to write.
    const data = Array.from({ length: 100 }, () => rng.bytes(rng.int(20_000, 60_000)));
    for (const d of data) expect((await store.add('blob', d)).added).toBe(true);
    await store.flush();
    expect(puts()).toBeGreaterThan(10);
    // Before: about half of them (53 of 100) compressed here while the threads waited. Now only
    // while the threads are really behind (the first objects, as they start on the first batch).
    expect(store.stats.inlined).toBeLessThanOrEqual(5);
    expect(store.stats.objectsAdded).toBe(data.length);
    for (const d of data) expect((await store.get(sha256(d), 'blob')).equals(d)).toBe(true);
    expect((await entriesByObject(dir)).size).toBe(data.length);
    await repo.close();
  });

  it('a few small objects (a backup where nothing changed) are compressed and their pack sealed here, without starting a thread; more than INLINE_START_BYTES starts them', async () => {
    const { dir, repo } = await newRepo();
    // A codec context of its own: a pool of its own, which no other test has started threads in.
    const ctx = { idKey: randomBytes(32) };
    const before = compressThreadsStarted();
    const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 256 * 1024, compressWorkers: 2, codecContext: ctx });
    const trees = [Buffer.from('a tree of a folder above the sources, '.repeat(6)), Buffer.from('and its parent, '.repeat(9))];
    for (const t of trees) expect((await store.add('tree', t, objectId(t, ctx))).added).toBe(true);
    await store.flush();
    // Before: the first add() started a thread (about 100 ms) and the flush waited for it to seal the pack.
    expect(compressThreadsStarted() - before).toBe(0);
    expect(store.stats.inlined).toBe(0);
    for (const t of trees) expect((await store.get(objectId(t, ctx), 'tree')).equals(t)).toBe(true);
    // Beyond the first MiB, the threads do the work.
    const rng = new Rng(41);
    const data = Array.from({ length: 24 }, () => Buffer.concat([rng.bytes(2000), Buffer.alloc(100_000, 7)]));
    for (const d of data) await store.add('blob', d, objectId(d, ctx));
    await store.flush();
    expect(compressThreadsStarted() - before).toBeGreaterThan(0);
    for (const d of data) expect((await store.get(objectId(d, ctx), 'blob')).equals(d)).toBe(true);
    expect((await entriesByObject(dir)).size).toBe(trees.length + data.length);
    await repo.close();
  });

  it('addHashing: the threads compute the ids (plain and keyed), each object is stored once, with or without threads', async () => {
    const rng = new Rng(37);
    // Large and small, compressible and not; a few twice, and one already stored through add().
    const base = objects(rng, 40);
    const data = [...base, base[3]!, base[6]!, base[7]!];
    const idKey = randomBytes(32);
    // likelyStored: the threads only hash; what the lookups find new is compressed afterwards.
    for (const [compressWorkers, codecContext, likelyStored] of [[2, undefined, false], [0, undefined, false], [2, { idKey }, false], [2, undefined, true], [2, { idKey }, true]] as const) {
      const { dir, repo } = await newRepo();
      const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 256 * 1024, maxInflightBytes: 512 * 1024, compressWorkers, ...(codecContext ? { codecContext } : {}) });
      const idOf = (d: Buffer): Buffer => objectId(d, store.ctx);
      await store.add('blob', base[5]!, idOf(base[5]!));
      const ids: Promise<Buffer>[] = [];
      for (const d of data) ids.push((await store.addHashing('blob', d, likelyStored)).id);
      const got = await Promise.all(ids);
      await store.flush();
      for (const [i, d] of data.entries()) expect(toHex(got[i]!)).toBe(toHex(idOf(d)));
      if (codecContext) expect(toHex(got[0]!)).not.toBe(toHex(sha256(data[0]!)));
      expect(store.stats.objectsAdded).toBe(base.length);
      expect((await entriesByObject(dir)).size).toBe(base.length);
      for (const d of base) expect((await store.get(idOf(d), 'blob')).equals(d)).toBe(true);
      // Stored as the calling thread would store them (compressed when that saves enough).
      const stored = await entriesByObject(dir);
      for (const d of base) {
        const e = stored.get(toHex(idOf(d)))!;
        const c = encodeObjectSync(d, 'zstd', 3, store.ctx);
        expect([e.codec, e.length]).toEqual([c.codec, c.data.length]);
      }
      await repo.close();
    }
  });

  it('addHashing: content found stored again and again (no files-cache entry, after gc) is soon only hashed, not compressed for nothing', async () => {
    const { repo } = await newRepo();
    const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 256 * 1024, maxInflightBytes: 512 * 1024, compressWorkers: 2 });
    const rng = new Rng(43);
    const data = Array.from({ length: 80 }, () => Buffer.concat([rng.bytes(30_000), Buffer.alloc(30_000, 1)]));
    const first = await Promise.all(await Promise.all(data.map(async (d) => (await store.addHashing('blob', d)).id)));
    await store.flush();
    expect(store.stats.hashedFirst).toBe(0); // new content: hashed and compressed at once
    expect(store.stats.compressedStored).toBe(0);
    expect(store.stats.objectsAdded).toBe(data.length);
    const again: Promise<Buffer>[] = [];
    for (const d of data) again.push((await store.addHashing('blob', d)).id);
    const second = await Promise.all(again);
    await store.flush();
    expect(second.map(toHex)).toEqual(first.map(toHex));
    expect(store.stats.objectsAdded).toBe(data.length);
    // The share found stored passes one half within a few objects (and the ring's worth in flight):
    // from then on they are only hashed (or, with the threads behind, hashed and looked up here).
    expect(store.stats.compressedStored).toBeGreaterThan(0);
    expect(store.stats.compressedStored).toBeLessThan(data.length / 3);
    // New content again: back to hashing and compressing at once.
    const before = store.stats.hashedFirst;
    const wasted = store.stats.compressedStored;
    for (const d of data) await store.addHashing('blob', Buffer.concat([d, Buffer.from('new')]));
    await store.flush();
    expect(store.stats.hashedFirst - before).toBeLessThan(data.length / 2);
    expect(store.stats.compressedStored).toBe(wasted);
    expect(store.stats.objectsAdded).toBe(2 * data.length);
    await repo.close();
  });

  it('addHashing: a failed pack write rejects the ids still to come, it does not leave them waiting', async () => {
    const { repo } = await newRepo();
    const failing = withPuts(repo, { failAt: 2, message: 'the disk is full' }).backend;
    // The threads from the first object (inlineStartBytes 0): ids computed here are never still to come.
    const store = new ObjectStore(failing, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, maxInflightBytes: 256 * 1024, compressWorkers: 2, inlineStartBytes: 0 });
    const rng = new Rng(41);
    const ids: Promise<Buffer>[] = [];
    let failed: unknown;
    try {
      for (let i = 0; i < 60; i++) ids.push((await store.addHashing('blob', rng.bytes(20_000), i % 2 === 0)).id);
      await store.flush();
    } catch (e) {
      failed = e;
    }
    expect(String(failed)).toContain('the disk is full');
    const settled = await Promise.allSettled(ids);
    expect(settled.some((s) => s.status === 'rejected' && String(s.reason).includes('the disk is full'))).toBe(true);
    await store.settle();
    await repo.close();
  });

  it('addRead: small files read straight into the ring are stored once each, exactly; it declines (reading nothing) where it cannot, and the caller stores what it then reads', async () => {
    const { dir, repo } = await newRepo();
    const files = path.join(scratchDir('snap-units-files-'), 'f');
    fs.mkdirSync(files, { recursive: true });
    const rng = new Rng(41);
    // Distinct contents, some twice, of sizes the ring takes (64 bytes and up): 2 MiB in all, in a
    // 128 KiB ring that fills and wraps.
    const contents = objects(rng, 160).filter((d) => d.length >= 64 && d.length <= 64 * 1024);
    const all = [...contents, ...contents.slice(0, 20)];
    const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, maxInflightBytes: 128 * 1024, compressWorkers: 1, inlineStartBytes: 0 });
    let declined = 0;
    const ids: Buffer[] = [];
    const added: boolean[] = [];
    for (const [i, d] of all.entries()) {
      const f = path.join(files, String(i));
      fs.writeFileSync(f, d);
      const fd = fs.openSync(f, 'r');
      try {
        const r = store.addRead('blob', fd, d.length, sha256);
        if (r) {
          expect(r.length).toBe(d.length);
          expect(r.id!.equals(sha256(d))).toBe(true);
          ids.push(r.id!);
          added.push(r.added);
        } else {
          // Nothing was read: the descriptor still reads from the start, as a caller's would.
          declined++;
          const buf = Buffer.alloc(d.length);
          expect(fs.readSync(fd, buf, 0, d.length, null)).toBe(d.length);
          const a = await store.add('blob', buf);
          ids.push(a.id);
          added.push(a.added);
        }
        // addRead never moves the descriptor's offset either.
        if (r) expect(fs.readSync(fd, Buffer.alloc(1), 0, 1, null)).toBe(1);
      } finally {
        fs.closeSync(fd);
      }
      if (i % 7 === 0) await new Promise<void>((res) => setImmediate(res)); // the threads' results come in
    }
    await store.flush();
    expect(declined).toBeLessThan(all.length / 2);
    // The repeats were found pending or stored: each content once.
    expect(added.filter(Boolean)).toHaveLength(contents.length);
    expect(added.slice(contents.length).every((a) => !a)).toBe(true);
    expect(store.stats.objectsAdded).toBe(contents.length);
    for (const [i, d] of all.entries()) expect((await store.get(ids[i]!, 'blob')).equals(d)).toBe(true);
    expect((await entriesByObject(dir)).size).toBe(contents.length);

    // A file that ended sooner than its size said: what was read, under its own id; one that is
    // now empty: nothing stored, no id. Content stored already (the index): not added.
    const short = path.join(files, 'short');
    fs.writeFileSync(short, Buffer.from('x'.repeat(300)));
    const empty = path.join(files, 'empty');
    fs.writeFileSync(empty, '');
    const again = path.join(files, 'again');
    fs.writeFileSync(again, contents[3]!);
    const read = (f: string, size: number) => {
      const fd = fs.openSync(f, 'r');
      try {
        return store.addRead('blob', fd, size, sha256);
      } finally {
        fs.closeSync(fd);
      }
    };
    const s = read(short, 1000);
    expect(s?.length).toBe(300);
    expect(s?.id?.equals(sha256(Buffer.from('x'.repeat(300))))).toBe(true);
    expect(s?.added).toBe(true);
    expect(read(empty, 100)).toEqual({ id: undefined, added: false, length: 0 });
    expect(read(again, contents[3]!.length)).toMatchObject({ added: false, length: contents[3]!.length });
    await store.flush();
    expect((await store.get(s!.id!, 'blob')).toString()).toBe('x'.repeat(300));

    // Where it cannot: no threads, before them (the first MiB is done here), objects under 64
    // bytes, an index that cannot answer at once (no lookupNow; another process holds it): the
    // file is not even read (nothing is hashed).
    const fresh = path.join(files, 'fresh');
    fs.writeFileSync(fresh, rng.bytes(5000));
    const lookupOnly = { lookup: (id: Buffer) => repo.index.lookup(id), addPack: (p: string, n: number, e: PackEntry[]) => repo.index.addPack(p, n, e) };
    const stores = [
      new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, compressWorkers: 0 }),
      new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, compressWorkers: 1 }),
      new ObjectStore(repo.backend, lookupOnly, { codec: 'zstd', level: 3, packSize: 64 * 1024, compressWorkers: 1, inlineStartBytes: 0 }),
      new ObjectStore(repo.backend, { ...lookupOnly, lookupNow: (id: Buffer) => repo.index.lookup(id), answersAtOnce: false }, { codec: 'zstd', level: 3, packSize: 64 * 1024, compressWorkers: 1, inlineStartBytes: 0 }),
    ];
    const neverHashed = (): Buffer => {
      throw new Error('read and hashed where it cannot be stored at once');
    };
    for (const st of stores) {
      const fd = fs.openSync(fresh, 'r');
      try {
        expect(st.addRead('blob', fd, 5000, neverHashed)).toBeUndefined();
        expect(fs.readSync(fd, Buffer.alloc(10), 0, 10, null)).toBe(10);
      } finally {
        fs.closeSync(fd);
      }
      await st.flush();
    }
    const fd = fs.openSync(fresh, 'r');
    try {
      expect(store.addRead('blob', fd, 63, sha256)).toBeUndefined();
      // An index that was to answer at once and did not (its owner ended just then): declined
      // after the read, nothing claimed, and the caller's add() stores it.
      const moving = new ObjectStore(repo.backend, { ...lookupOnly, lookupNow: (id: Buffer) => repo.index.lookup(id) }, { codec: 'zstd', level: 3, packSize: 64 * 1024, compressWorkers: 1, inlineStartBytes: 0 });
      expect(moving.addRead('blob', fd, 5000, sha256)).toBeUndefined();
      expect((await moving.add('blob', fs.readFileSync(fresh))).added).toBe(true);
      await moving.flush();
      expect((await moving.get(sha256(fs.readFileSync(fresh)), 'blob')).equals(fs.readFileSync(fresh))).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
    await store.flush();
    await repo.close();
  });

  it('durable(): resolves once every object added before it is written and indexed, without writing the open pack of file data early (trees at once); rejects on failure and after a stop, never hangs', async () => {
    const { repo } = await newRepo();
    const store = new ObjectStore(repo.backend, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, maxInflightBytes: 256 * 1024, compressWorkers: 2 });
    const rng = new Rng(43);
    const before = Array.from({ length: 9 }, () => rng.bytes(20_000)); // three full packs' worth and a part
    for (const d of before) await store.add('blob', d);
    const tree = encodeTree([]);
    const treeId = (await store.add('tree', tree)).id;
    let done = false;
    const durable = store.durable().then(() => (done = true));
    await new Promise((r) => setTimeout(r, 300));
    // The tree's pack is written at once; the open pack of file data waits to be filled.
    expect(repo.index.lookupNow(treeId)).toBeDefined();
    expect(done).toBe(false);
    const missing = before.filter((d) => repo.index.lookupNow(sha256(d)) === undefined);
    expect(missing.length).toBeGreaterThan(0);
    const packsBefore = store.stats.packsWritten;
    // More data fills it: written as a full pack, and everything from before is indexed.
    for (let i = 0; i < 4; i++) await store.add('blob', rng.bytes(20_000));
    await durable;
    expect(done).toBe(true);
    for (const d of before) expect(repo.index.lookupNow(sha256(d)), 'an object added before durable()').toBeDefined();
    expect(store.stats.packsWritten).toBeGreaterThan(packsBefore);
    // With nothing open it resolves at once.
    await store.flush();
    await store.durable();
    // Stopped (settle) with a pack open: rejects instead of waiting for it forever.
    await store.add('blob', rng.bytes(5_000));
    const stopped = store.durable();
    await store.settle();
    await expect(stopped).rejects.toThrow(/stopped before these objects were written/);
    await expect(store.durable()).rejects.toThrow(/stopped before/);
    // A failed pack write: rejects with its error.
    const failing = new ObjectStore(withPuts(repo, { failAt: 1, message: 'the bucket went away' }).backend, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, maxInflightBytes: 256 * 1024, compressWorkers: 2 });
    for (let i = 0; i < 2; i++) await failing.add('blob', rng.bytes(20_000));
    const fails = failing.durable();
    for (let i = 0; i < 6; i++) await failing.add('blob', rng.bytes(20_000)).catch(() => {});
    await expect(fails).rejects.toThrow('the bucket went away');
    await failing.settle();
    await repo.close();
  });

  it('a pack write failing while add() waits for room in the ring fails that add(), it does not hang', async () => {
    const { repo } = await newRepo();
    const failing = withPuts(repo, { delayMs: 30, failAt: 3, message: 'the gateway went away' }).backend;
    const store = new ObjectStore(failing, repo.index, { codec: 'zstd', level: 3, packSize: 64 * 1024, maxInflightBytes: 128 * 1024, compressWorkers: 2, packWrites: 1 });
    const rng = new Rng(31);
    let failed: unknown;
    try {
      for (const d of objects(rng, 400)) await store.add('blob', d);
      await store.flush();
    } catch (e) {
      failed = e;
    }
    expect(String(failed)).toContain('the gateway went away');
    await store.settle();
    await repo.close();
  });
});

describe('the writer threads\' batches (ops/restore/wire.ts)', () => {
  it('every field of every kind of job comes out as it went in, byte strings that are not UTF-8 too, job after job', () => {
    const jobs: Job[] = [
      { n: 7, codec: 2, rawLength: 1000, what: 'object 0123 (in pack abcd)', size: 1000, mode: 0o644, time: 1_600_000_000.123456, data: Buffer.from('stored bytes'), tmp: Buffer.from([0x2f, 0xff, 0xfe, 0x41]), dest: Buffer.from('/t/ünï'), id: Buffer.alloc(32, 9) },
      { n: 8, codec: 0, rawLength: 0, what: 'an empty file', size: 0, mode: 0o600, time: '-12345.5', checkTime: ['-12345500000000'], owner: { uid: 1000, gid: 100 }, data: Buffer.alloc(0), tmp: Buffer.from('a'), dest: Buffer.from('b'), id: Buffer.alloc(0) },
      { n: 9, codec: 2, rawLength: 8 << 20, what: 'object ff', size: 8 << 20, mode: 0, time: 0, chunk: { fd: 17, pos: 3 << 30 }, from: { pack: 'ab'.repeat(32), offset: 123_456_789, length: 4_000_000 }, data: Buffer.alloc(0), tmp: Buffer.alloc(0), dest: Buffer.alloc(0), id: Buffer.alloc(32, 1) },
      // No description: the thread makes it from the pack the object is in (not the spool's copy it reads).
      { n: 10, codec: 2, rawLength: 5, inPack: 'cd'.repeat(32), size: 5, mode: 0o644, time: 1, from: { pack: 'spool-copy', offset: 0, length: 40 }, data: Buffer.alloc(0), tmp: Buffer.from('t'), dest: Buffer.from('d'), id: Buffer.alloc(32, 0xab) },
    ];
    const encoded = jobs.map(encode);
    const buf = new ArrayBuffer(encoded.reduce((n, e) => n + e.bytes, 0));
    let off = 0;
    for (const e of encoded) {
      expect(e.bytes % 8).toBe(0);
      put(buf, off, e);
      off += e.bytes;
    }
    const out = [...jobsIn({ buf, jobs: jobs.length })];
    const described = (j: Job): Job => {
      const { inPack, ...rest } = j;
      return inPack === undefined ? j : { ...rest, what: objectWhat(j.id, inPack) };
    };
    expect(out).toEqual(jobs.map((j) => ({ owner: undefined, checkTime: undefined, chunk: undefined, from: undefined, ...described(j) })));
    expect(out[3]!.what).toBe(`object ${'ab'.repeat(8)} (in pack ${'cd'.repeat(6)})`);
  });
});

describe('FileWriter: the restore writer threads', () => {
  const mtime = 1_600_000_000;

  function job(dir: string, name: string, raw: Buffer, over: Partial<WriteJob> = {}): WriteJob {
    const c = encodeObjectSync(raw, 'zstd', 3);
    return {
      tmp: Buffer.from(path.join(dir, `.snap-restore-${name}`)),
      dest: Buffer.from(path.join(dir, name)),
      data: Buffer.from(c.data),
      codec: c.codec,
      rawLength: raw.length,
      id: sha256(raw),
      what: `object ${name}`,
      size: raw.length,
      mode: 0o640,
      time: mtime,
      ...over,
    };
  }

  it('writes files of every codec and size in batches, with mode, time and holes; empty files too', async () => {
    const dir = scratchDir('snap-writer-');
    const w = new FileWriter(2);
    try {
      const rng = new Rng(3);
      const raws = [
        ...objects(rng, 60),
        Buffer.concat([Buffer.from('head'), Buffer.alloc(512 * 1024)]), // trailing hole: a truncate sets the size
        rng.bytes(600 * 1024), // larger than a batch buffer: travels alone
      ];
      const got = await Promise.all(raws.map((r, i) => w.write(job(dir, `f${i}`, r))));
      expect(got.every((t) => t === undefined)).toBe(true);
      await w.write({ ...job(dir, 'empty', Buffer.alloc(0)), data: Buffer.alloc(0), codec: CODEC_RAW, id: undefined, rawLength: 0, size: 0 });
      raws.forEach((r, i) => {
        const p = path.join(dir, `f${i}`);
        expect(fs.readFileSync(p).equals(r), `f${i}`).toBe(true);
        const st = fs.statSync(p);
        expect(st.mode & 0o777).toBe(0o640);
        expect(st.mtimeMs).toBe(mtime * 1000);
      });
      const holey = fs.statSync(path.join(dir, `f${raws.length - 2}`));
      expect(holey.blocks * 512).toBeLessThan(holey.size); // the zeros were not written
      expect(fs.statSync(path.join(dir, 'empty')).size).toBe(0);
      expect(fs.readdirSync(dir).filter((n) => n.startsWith('.snap-restore-'))).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it('an object that fails verification is SNAP_CORRUPT and leaves no file; a system error keeps its code', async () => {
    const dir = scratchDir('snap-writer-');
    const w = new FileWriter(1);
    try {
      const raw = Buffer.from('some content that compresses well\n'.repeat(200));
      const bad = job(dir, 'bad', raw);
      bad.data[bad.data.length >> 1]! ^= 1;
      await expect(w.write(bad)).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_CORRUPT') && (e as Error).message.startsWith('object bad'));
      await expect(w.write(job(dir, 'wrongid', raw, { id: sha256(Buffer.from('x')) }))).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_CORRUPT'));
      // The temporary name exists already: O_EXCL refuses it, the errno code comes back.
      fs.writeFileSync(path.join(dir, '.snap-restore-taken'), 'x');
      await expect(w.write(job(dir, 'taken', raw))).rejects.toMatchObject({ code: 'EEXIST' });
      expect(fs.readdirSync(dir).sort()).toEqual(['.snap-restore-taken']);
      // The writer goes on with the next file.
      await w.write(job(dir, 'good', raw));
      expect(fs.readFileSync(path.join(dir, 'good')).equals(raw)).toBe(true);
    } finally {
      await w.close();
    }
  });

  it('reports the time a file got when it is not the one asked to be checked', async () => {
    const dir = scratchDir('snap-writer-');
    const w = new FileWriter(1);
    try {
      const t = await w.write(job(dir, 'timed', Buffer.from('x'.repeat(100)), { checkTime: String(BigInt(mtime + 1) * 1_000_000_000n) }));
      expect(t).toBe(BigInt(mtime) * 1_000_000_000n);
    } finally {
      await w.close();
    }
  });
});

describe('PackRewriter (gc, repair)', () => {
  it('copies exactly the live objects, stored bytes unchanged, and the index then points at the copies', async () => {
    const { dir, repo } = await newRepo(64 * 1024);
    const rng = new Rng(11);
    const data = objects(rng, 40);
    for (const d of data) await repo.objects.add('blob', d);
    await repo.objects.flush();
    const before = await entriesByObject(dir);
    const live = new Set(data.filter((_, i) => i % 3 !== 0).map((d) => toHex(sha256(d))));
    const w = new PackRewriter(repo.backend, repo.index, 64 * 1024, repo.objects.ctx);
    const oldPacks = [...(await packs(dir)).keys()];
    for (const p of oldPacks) {
      const r = await w.copyLive(p, async (e) => live.has(toHex(e.id)));
      expect(r.ok).toBe(true);
    }
    await w.flush();
    // The new packs hold exactly the live objects, with their stored bytes as they were.
    const copied = new Map<string, PackEntry>();
    for (const p of w.written) {
      for (const e of await readPackHeader(repo.backend, p)) {
        copied.set(toHex(e.id), e);
        const old = before.get(toHex(e.id))!;
        const a = await repo.backend.getRange(packName(p), e.offset, e.length);
        const b = await repo.backend.getRange(packName(old.pack), old.offset, old.length);
        expect(a.equals(b)).toBe(true);
      }
    }
    expect(new Set(copied.keys())).toEqual(live);
    // The index points at the new copies, and every live object reads back.
    for (const d of data.filter((x) => live.has(toHex(sha256(x))))) {
      const loc = await repo.index.lookup(sha256(d));
      expect(w.written.has(loc!.pack)).toBe(true);
      expect((await repo.objects.get(sha256(d))).equals(d)).toBe(true);
    }
    await repo.close();
  });

  it('copies nothing from a pack whose live object is damaged', async () => {
    const { dir, repo } = await newRepo(1024 * 1024);
    const rng = new Rng(12);
    const data = objects(rng, 8);
    for (const d of data) await repo.objects.add('blob', d);
    await repo.objects.flush();
    const [pack, entries] = [...(await packs(dir))][0]!;
    const victim = entries.find((e) => e.length > 100)!;
    const file = packFile(dir, pack);
    const bytes = fs.readFileSync(file);
    bytes[victim.offset + (victim.length >> 1)]! ^= 0x10;
    fs.writeFileSync(file, bytes);
    const w = new PackRewriter(repo.backend, repo.index, 1024 * 1024, repo.objects.ctx);
    const r = await w.copyLive(pack, async () => true);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(toHex(victim.id).slice(0, 16));
    await w.flush();
    expect(w.written.size).toBe(0);
    await repo.close();
  });
});

describe('reachability', () => {
  const meta = { mode: 0o755, uid: 0, gid: 0, user: 'root', group: 'root', mtime: { sec: 1, nsec: 0 } };
  const file = (name: string, chunks: Buffer[]): Node => ({ ...meta, name: Buffer.from(name), type: 'file', size: 0, chunks });
  const dirNode = (name: string, tree: Buffer): Node => ({ ...meta, name: Buffer.from(name), type: 'dir', size: 0, tree });

  async function addTree(repo: Repository, nodes: Node[]): Promise<Buffer> {
    const { id } = await repo.objects.add('tree', encodeTree(sortNodes(nodes)));
    return id;
  }

  it('visits every distinct tree once and every blob once, across shared subtrees and snapshots; a tree equal to a blob is still walked', async () => {
    const { repo } = await newRepo();
    const c = (s: string): Buffer => sha256(Buffer.from(s));
    const leaf = await addTree(repo, [file('a', [c('1'), c('2')]), file('b', [c('2'), c('3')])]);
    const mid = await addTree(repo, [dirNode('x', leaf), dirNode('y', leaf), file('m', [c('4')])]);
    const root1 = await addTree(repo, [dirNode('one', mid), dirNode('two', leaf)]);
    // The second root names, as a file's chunk, the id of a tree (its bytes are a blob too).
    const root2 = await addTree(repo, [dirNode('again', mid), file('odd', [leaf, c('5')])]);
    await repo.objects.flush();
    const marks = newMarks();
    const trees: string[] = [];
    const blobs: string[] = [];
    const visitor = { tree: (id: Buffer) => void trees.push(toHex(id)), blob: (id: Buffer) => void blobs.push(toHex(id)) };
    await walkTrees(repo, [root1], marks, visitor);
    await walkTrees(repo, [root2, root1], marks, visitor);
    expect(trees.sort()).toEqual([leaf, mid, root1, root2].map(toHex).sort());
    expect(blobs.sort()).toEqual([c('1'), c('2'), c('3'), c('4'), leaf, c('5')].map(toHex).sort());
    expect(marks.trees.has(leaf) && marks.blobs.has(leaf)).toBe(true);
    await repo.close();
  });

  it('a tree that cannot be read goes to treeError and its subtree is skipped; the rest is walked', async () => {
    const { repo } = await newRepo();
    const c = (s: string): Buffer => sha256(Buffer.from(s));
    const missing = sha256(Buffer.from('no such tree'));
    const ok = await addTree(repo, [file('f', [c('ok')])]);
    const root = await addTree(repo, [dirNode('gone', missing), dirNode('here', ok)]);
    await repo.objects.flush();
    const errors: string[] = [];
    const marks = newMarks();
    await walkTrees(repo, [root], marks, { treeError: (id, e) => void errors.push(`${toHex(id)} ${isSnapError(e, 'SNAP_MISSING_OBJECT')}`) });
    expect(errors).toEqual([`${toHex(missing)} true`]);
    expect(marks.blobs.has(c('ok'))).toBe(true);
    // A treeError that throws stops the walk with its error.
    await expect(walkTrees(repo, [root], newMarks(), { treeError: () => Promise.reject(new Error('stop')) })).rejects.toThrow('stop');
    await repo.close();
  });

  it('markSnapshots marks what the snapshots name; an unreadable tree aborts it (gc must not guess); a stopped walk throws its reason', async () => {
    const { repo } = await newRepo();
    const c = (s: string): Buffer => sha256(Buffer.from(s));
    const t = await addTree(repo, [file('only', [c('z')])]);
    await repo.objects.flush();
    const snaps = [{ id: 'a'.repeat(64), tree: t } as unknown as Parameters<typeof markSnapshots>[1][number]];
    const m = await markSnapshots(repo, snaps);
    expect(m.trees.size).toBe(1);
    expect(m.blobs.has(c('z'))).toBe(true);
    const ac = new AbortController();
    ac.abort(new Error('stopped'));
    await expect(markSnapshots(repo, snaps, newMarks(), ac.signal)).rejects.toThrow('stopped');
    const broken = [{ id: 'b'.repeat(64), tree: sha256(Buffer.from('absent')) } as unknown as Parameters<typeof markSnapshots>[1][number]];
    await expect(markSnapshots(repo, broken)).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_MISSING_OBJECT'));
    await repo.close();
  });
});
