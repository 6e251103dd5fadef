// store/pack-reader.ts on a real backend (local files, every read counted by
// helpers/counting-backend.ts): what a restore's reads cost in requests, and the memory bound.
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import * as path from 'node:path';
import { PackReader } from '../src/store/pack-reader.js';
import { packName } from '../src/store/pack.js';
import { EncryptedBackend } from '../src/backend/encrypted.js';
import type { Backend } from '../src/backend/backend.js';
import { RestoreSpool } from '../src/repo/spool.js';
import { type StoredAt, ThreadPackReader } from '../src/store/thread-pack-reads.js';
import { currentHost } from '../src/cli/host.js';
import { CountingBackend } from './helpers/counting-backend.js';
import { tmpDir } from './helpers/cli.js';

const OBJECT = 10_000;
const OBJECTS = 100;
const PACK = OBJECT * OBJECTS;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** `n` packs of OBJECTS objects of OBJECT random bytes each, on local files. */
async function packs(n: number): Promise<{ backend: CountingBackend; ids: string[]; bytes: Map<string, Buffer> }> {
  const dir = tmpDir('snap-pack-reader-');
  dirs.push(dir);
  const local = new LocalBackend(dir);
  const ids: string[] = [];
  const bytes = new Map<string, Buffer>();
  for (let i = 0; i < n; i++) {
    const id = randomBytes(32).toString('hex');
    const data = randomBytes(PACK);
    await local.put(packName(id), data);
    ids.push(id);
    bytes.set(id, data);
  }
  return { backend: new CountingBackend(local), ids, bytes };
}

describe('PackReader', () => {
  it('packs read in a burst and once more much later (an object another file had earlier): each pack is fetched once, the late reads come from what was kept, within the bound', async () => {
    const { backend, ids, bytes } = await packs(10);
    const budget = 3 * PACK;
    const reader = new PackReader(backend, { budgetBytes: budget, fetches: 2 });
    // The plan: each pack's first 99 objects in turn, then the last object of every pack.
    const reads: [string, number][] = [];
    for (const id of ids) for (let i = 0; i < OBJECTS - 1; i++) reads.push([id, i * OBJECT]);
    for (const id of ids) reads.push([id, (OBJECTS - 1) * OBJECT]);
    for (const [id, at] of reads) reader.expect(id, at, OBJECT);
    for (const [id, at] of reads) {
      const got = await reader.read(id, at, OBJECT);
      expect(got.equals(bytes.get(id)!.subarray(at, at + OBJECT))).toBe(true);
    }
    // One request per pack: before, a pack was kept whole until its last read, so the tenth pack
    // found no room, packs were dropped and their late reads made one request each.
    expect(backend.reads).toEqual(ids.map(packName));
    expect(reader.stats.rangedReads).toBe(0);
    expect(reader.stats.peakHeld).toBeLessThanOrEqual(budget);
    await backend.close();
  });

  it('fetches run ahead of the reads in plan order, no more than `fetches` at once, and never beyond the bound', async () => {
    const { backend, ids } = await packs(8);
    const budget = 3 * PACK;
    const reader = new PackReader(backend, { budgetBytes: budget, fetches: 2 });
    for (const id of ids) for (let i = 0; i < OBJECTS; i++) reader.expect(id, i * OBJECT, OBJECT);
    // The first read starts its own pack's fetch and the next one's.
    const first = reader.read(ids[0]!, 0, OBJECT);
    expect(backend.reads).toEqual([packName(ids[0]!), packName(ids[1]!)]);
    await first;
    for (const id of ids) for (let i = id === ids[0] ? 1 : 0; i < OBJECTS; i++) await reader.read(id, i * OBJECT, OBJECT);
    expect(backend.reads).toEqual(ids.map(packName));
    expect(reader.stats.peakFetches).toBeLessThanOrEqual(2);
    expect(reader.stats.peakHeld).toBeLessThanOrEqual(budget);
    await backend.close();
  });

  it('an object planned twice is kept until its second read; reads beyond the plan are made in ranges', async () => {
    const { backend, ids, bytes } = await packs(2);
    const reader = new PackReader(backend, { budgetBytes: 4 * PACK, fetches: 2 });
    const [a, b] = ids as [string, string];
    for (let i = 0; i < OBJECTS; i++) reader.expect(a, i * OBJECT, OBJECT);
    reader.expect(b, 0, PACK);
    reader.expect(a, 5 * OBJECT, OBJECT);
    for (let i = 0; i < OBJECTS; i++) await reader.read(a, i * OBJECT, OBJECT);
    expect((await reader.read(b, 0, PACK)).equals(bytes.get(b)!)).toBe(true);
    expect((await reader.read(a, 5 * OBJECT, OBJECT)).equals(bytes.get(a)!.subarray(5 * OBJECT, 6 * OBJECT))).toBe(true);
    expect(backend.reads).toEqual([packName(a), packName(b)]);
    // A third read of it was not planned.
    expect((await reader.read(a, 5 * OBJECT, OBJECT)).equals(bytes.get(a)!.subarray(5 * OBJECT, 6 * OBJECT))).toBe(true);
    expect(backend.reads).toEqual([packName(a), packName(b), packName(a)]);
    await backend.close();
  });
});

/** Pack copies in a spool's folder. */
function copies(spool: RestoreSpool): string[] {
  const data = path.join(spool.dir, 'data');
  if (!fs.existsSync(data)) return [];
  return fs.readdirSync(data).flatMap((d) => fs.readdirSync(path.join(data, d)));
}

/** A spool in a new cache folder. */
function newSpool(keys?: { dataKey: Buffer }): RestoreSpool {
  const cache = tmpDir('snap-spool-cache-');
  dirs.push(cache);
  return RestoreSpool.create(cache, currentHost(), keys);
}

describe('PackReader with a spool (a restore from remote storage: repo/spool.ts)', () => {
  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'}: fetched packs are written to the spool, located rather than read here, read by a thread from there; one request per pack; a copy whose reads are made stays while there is room (a directory restored twice reads it again), then goes; never more than the spool's bound`, async () => {
      const { backend: counting, ids, bytes } = await packs(6);
      const keys = { dataKey: randomBytes(32) };
      let backend: Backend = counting;
      if (encrypted) {
        // The same packs, sealed: stored again through the encryption, read through it.
        backend = new EncryptedBackend(counting, keys);
        for (const id of ids) await backend.put(packName(id), bytes.get(id)!);
        counting.reset();
      }
      const spool = newSpool(encrypted ? keys : undefined);
      const reader = new PackReader(backend, { budgetBytes: 2 * PACK, fetches: 2, spool, spoolBytes: 4 * PACK });
      const thread = new ThreadPackReader(spool.reads);
      const reads: [string, number][] = [];
      for (const id of ids) for (let i = 0; i < OBJECTS; i++) reads.push([id, i * OBJECT]);
      reads.push([ids[0]!, 5 * OBJECT]); // once more, late
      for (const [id, at] of reads) reader.expect(id, at, OBJECT, true);
      const pending: StoredAt[] = [];
      let located = 0;
      let peak = 0;
      for (const [k, [id, at]] of reads.entries()) {
        const want = bytes.get(id)!.subarray(at, at + OBJECT);
        // Every tenth read as the main thread makes them (an object its writer cannot read): its bytes, read from the copy here.
        const got = k % 10 === 3 ? await reader.read(id, at, OBJECT) : await reader.locate(id, at, OBJECT);
        if (Buffer.isBuffer(got)) expect(got.equals(want), `${id} ${at}`).toBe(true);
        else {
          located++;
          expect(thread.read(got).equals(want), `${id} ${at}`).toBe(true);
          pending.push(got);
          // Jobs answered a while after they were sent.
          while (pending.length > 30) reader.settled(pending.shift()!.pack);
        }
        peak = Math.max(peak, copies(spool).length);
      }
      expect(located).toBeGreaterThan(500);
      expect(reader.stats.spooledReads).toBe(reads.length);
      // The first pack's copy is kept for its late read, which waited for no request.
      expect(counting.readsOf('data/').filter((n) => n === packName(ids[0]!))).toHaveLength(1);
      expect(new Set(counting.readsOf('data/')).size).toBe(ids.length);
      expect(counting.readsOf('data/')).toHaveLength(ids.length);
      expect(peak).toBeLessThanOrEqual(4);
      for (const at of pending.splice(0)) reader.settled(at.pack);
      // The last packs' copies are still there: a read made again, beyond the plan, finds one.
      const kept = copies(spool);
      expect(kept.length).toBeGreaterThan(0);
      expect(kept.length).toBeLessThanOrEqual(4);
      expect(kept).toContain(ids[5]);
      const again = await reader.locate(ids[5]!, 7 * OBJECT, OBJECT);
      expect(Buffer.isBuffer(again)).toBe(false);
      expect(thread.read(again as StoredAt).equals(bytes.get(ids[5]!)!.subarray(7 * OBJECT, 8 * OBJECT))).toBe(true);
      reader.settled(ids[5]!);
      expect(counting.readsOf('data/')).toHaveLength(ids.length);
      thread.close();
      await spool.close();
      expect(fs.existsSync(spool.dir)).toBe(false);
      await counting.close();
    });
  }

  it('locateNow: nothing (and nothing counted) until a pack is in the spool; then where, as locate says it, each read once; the copy stays until every read is settled', async () => {
    const { backend, ids, bytes } = await packs(3);
    const spool = newSpool();
    const reader = new PackReader(backend, { budgetBytes: 2 * PACK, fetches: 1, spool, spoolBytes: 2 * PACK });
    const thread = new ThreadPackReader(spool.reads);
    const [a, b, c] = ids as [string, string, string];
    for (const id of ids) for (let i = 0; i < OBJECTS; i++) reader.expect(id, i * OBJECT, OBJECT, true);
    // Nothing fetched yet: not there, and asking changed nothing (no fetch started, no read counted).
    expect(reader.locateNow(a, 0, OBJECT)).toBeUndefined();
    expect(backend.reads).toEqual([]);
    // The first read the usual way fetches the pack into the spool; the rest of it is there now.
    const first = await reader.locate(a, 0, OBJECT);
    expect(Buffer.isBuffer(first)).toBe(false);
    const located: StoredAt[] = [first as StoredAt];
    for (let i = 1; i < OBJECTS; i++) {
      const at = reader.locateNow(a, i * OBJECT, OBJECT);
      expect(at, `object ${i}`).toEqual({ pack: a, offset: i * OBJECT, length: OBJECT });
      located.push(at!);
    }
    expect(reader.stats.spooledReads).toBe(OBJECTS);
    // A pack not planned, and a range outside a spooled copy: not located now.
    expect(reader.locateNow('f'.repeat(64), 0, OBJECT)).toBeUndefined();
    expect(reader.locateNow(a, PACK - 10, OBJECT)).toBeUndefined();
    // Its reads all made, the copy stays while a thread may still read it, even when room is needed.
    for (const id of [b, c]) {
      for (let i = 0; i < OBJECTS; i++) {
        const got = reader.locateNow(id, i * OBJECT, OBJECT) ?? (await reader.locate(id, i * OBJECT, OBJECT));
        if (Buffer.isBuffer(got)) expect(got.equals(bytes.get(id)!.subarray(i * OBJECT, (i + 1) * OBJECT))).toBe(true);
        else reader.settled(got.pack);
      }
    }
    expect(copies(spool)).toContain(a);
    for (const at of located) {
      expect(thread.read(at).equals(bytes.get(a)!.subarray(at.offset, at.offset + at.length))).toBe(true);
      reader.settled(at.pack);
    }
    // Each pack fetched once.
    expect(backend.reads).toEqual(ids.map(packName));
    thread.close();
    await spool.close();
    await backend.close();
  });

  it('a pack shorter than its planned span (cut after the plan was made): no copy is kept; each read is made on its own, the bytes that are there right, the rest an error', async () => {
    for (const encrypted of [false, true]) {
      const { backend: counting, ids, bytes } = await packs(1);
      const keys = { dataKey: randomBytes(32) };
      const id = ids[0]!;
      let backend: Backend = counting;
      if (encrypted) {
        backend = new EncryptedBackend(counting, keys);
        await backend.put(packName(id), bytes.get(id)!);
      }
      // The stored pack loses its second half.
      const stored = await counting.get(packName(id));
      await counting.put(packName(id), stored.subarray(0, stored.length / 2));
      const spool = newSpool(encrypted ? keys : undefined);
      const reader = new PackReader(backend, { budgetBytes: 4 * PACK, fetches: 2, spool });
      for (let i = 0; i < OBJECTS; i++) reader.expect(id, i * OBJECT, OBJECT, true);
      let good = 0;
      let failed = 0;
      for (let i = 0; i < OBJECTS; i++) {
        const got = await reader.locate(id, i * OBJECT, OBJECT).catch(() => undefined);
        if (got === undefined) failed++;
        else {
          expect(Buffer.isBuffer(got), `${encrypted} ${i}`).toBe(true);
          expect((got as Buffer).equals(bytes.get(id)!.subarray(i * OBJECT, (i + 1) * OBJECT))).toBe(true);
          good++;
        }
      }
      expect(good).toBeGreaterThan(OBJECTS / 2 - 10);
      expect(failed).toBeGreaterThan(OBJECTS / 2 - 10);
      expect(good + failed).toBe(OBJECTS);
      expect(reader.stats.spooledReads).toBe(0);
      expect(copies(spool)).toEqual([]);
      await spool.close();
      await counting.close();
    }
  });

  it('a spool that cannot be written (its folder is in the way): the reads are made in ranges, their bytes right', async () => {
    const { backend, ids, bytes } = await packs(2);
    const spool = newSpool();
    fs.writeFileSync(path.join(spool.dir, 'data'), 'not a folder');
    const reader = new PackReader(backend, { budgetBytes: 4 * PACK, fetches: 2, spool });
    for (const id of ids) for (let i = 0; i < OBJECTS; i++) reader.expect(id, i * OBJECT, OBJECT, true);
    for (const id of ids) {
      for (let i = 0; i < OBJECTS; i++) {
        const got = await reader.locate(id, i * OBJECT, OBJECT);
        expect(Buffer.isBuffer(got) && got.equals(bytes.get(id)!.subarray(i * OBJECT, (i + 1) * OBJECT))).toBe(true);
      }
    }
    expect(reader.stats.spooledReads).toBe(0);
    expect(reader.stats.rangedReads).toBeGreaterThan(0);
    await spool.close();
    await backend.close();
  });

  it('a pack of which some planned read is made here (a tree pack the walk reads) is held in memory, not spooled; the others are', async () => {
    const { backend, ids, bytes } = await packs(2);
    const spool = newSpool();
    const reader = new PackReader(backend, { budgetBytes: 4 * PACK, fetches: 2, spool });
    const [trees, blobs] = ids as [string, string];
    for (let i = 0; i < OBJECTS; i++) reader.expect(trees, i * OBJECT, OBJECT, i !== 7);
    for (let i = 0; i < OBJECTS; i++) reader.expect(blobs, i * OBJECT, OBJECT, true);
    for (let i = 0; i < OBJECTS; i++) {
      const got = i === 7 ? await reader.read(trees, i * OBJECT, OBJECT) : await reader.locate(trees, i * OBJECT, OBJECT);
      expect(Buffer.isBuffer(got) && got.equals(bytes.get(trees)!.subarray(i * OBJECT, (i + 1) * OBJECT))).toBe(true);
    }
    const at = await reader.locate(blobs, 0, OBJECT);
    expect(Buffer.isBuffer(at)).toBe(false);
    expect(copies(spool)).toEqual([blobs]);
    expect(reader.stats.keptReads).toBe(OBJECTS);
    expect(backend.reads).toEqual([packName(trees), packName(blobs)]);
    await spool.close();
    await backend.close();
  });

  it('reads before the plan is made (the count walk of a restore reading each tree): each pack fetched whole once, the reads served from it; the reads of the restore then go their own way', async () => {
    const { backend, ids, bytes } = await packs(2);
    const reader = new PackReader(backend, { budgetBytes: 4 * PACK, fetches: 2 });
    const [a, b] = ids as [string, string];
    for (let i = OBJECTS - 1; i >= 0; i--) {
      for (const id of [a, b]) {
        const got = await reader.readEarly(id, i * OBJECT, OBJECT);
        expect(got.equals(bytes.get(id)!.subarray(i * OBJECT, (i + 1) * OBJECT))).toBe(true);
      }
    }
    expect(backend.reads).toEqual([packName(a), packName(b)]);
    expect(reader.stats.earlyFetches).toBe(2);
    // Once the restore reads, what readEarly kept is let go and its reads are the reader's own.
    reader.expect(a, 0, OBJECT);
    expect((await reader.read(a, 0, OBJECT)).equals(bytes.get(a)!.subarray(0, OBJECT))).toBe(true);
    expect((await reader.readEarly(b, 0, OBJECT)).equals(bytes.get(b)!.subarray(0, OBJECT))).toBe(true);
    expect(backend.reads).toEqual([packName(a), packName(b), packName(a), packName(b)]);
    await backend.close();
  });

  it("spools of processes that are gone are removed when a new one is made; a running process's are not", async () => {
    const cache = tmpDir('snap-spool-cache-');
    dirs.push(cache);
    const host = currentHost();
    const gone = { ...host, isAlive: (pid: number) => pid === host.pid };
    fs.mkdirSync(path.join(cache, 'restore-spool-4000001-abcd', 'data', 'ab'), { recursive: true });
    fs.writeFileSync(path.join(cache, 'restore-spool-4000001-abcd', 'data', 'ab', 'x'), 'left by a killed restore');
    const mine = RestoreSpool.create(cache, host, undefined);
    // Another spool of this process (its pid alive): kept.
    const again = RestoreSpool.create(cache, gone, undefined);
    expect(fs.readdirSync(cache).sort()).toEqual([path.basename(again.dir), path.basename(mine.dir)].sort());
    await mine.close();
    await again.close();
    expect(fs.readdirSync(cache)).toEqual([]);
  });
});

