// store/pack-reader.ts on a real backend (local files, every read counted by
// helpers/counting-backend.ts): what a restore's reads cost in requests, and the memory bound.
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { PackReader } from '../src/store/pack-reader.js';
import { packName } from '../src/store/pack.js';
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
