// The index's object locations (index/level-index.ts): written with the CBOR encoder, read in place
// when they have the usual shape (an array of six, a 32-byte pack id, five small integers) and
// through the decoder otherwise. Both ways must give the same location, and a location claiming
// more than the repository's objects can hold is refused either way. Real LevelDB.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LevelIndex } from '../src/index/level-index.js';
import { K_OBJECT, key } from '../src/index/keys.js';
import { encodeCbor } from '../src/model/cbor.js';
import type { PackEntry } from '../src/store/pack.js';
import { toHex } from '../src/core/ids.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-index-locations-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('object locations in the index', () => {
  it('read back exactly, whatever the size of their numbers (1, 2, 4 and 8 bytes of CBOR argument), at once and through a promise', async () => {
    const { index } = await LevelIndex.open(path.join(dir, 'a'), { repoId: 'r', waitMs: 0, sink: {} });
    try {
      const offsets = [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7];
      const sizes = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 1 << 20];
      const entries: PackEntry[] = [];
      for (let i = 0; i < 40; i++) {
        const size = (k: number): number => sizes[(i + k) % sizes.length]!;
        entries.push({ id: randomBytes(32), type: i % 3 === 0 ? 'tree' : 'blob', offset: offsets[i % offsets.length]!, length: size(1), rawLength: size(1), codec: i % 5 });
      }
      const pack = toHex(randomBytes(32));
      await index.addPack(pack, 1 << 20, entries);
      for (const e of entries) {
        const want = { pack, type: e.type, offset: e.offset, length: e.length, rawLength: e.rawLength, codec: e.codec };
        expect(index.lookupNow(e.id)).toEqual(want);
        expect(await index.lookup(e.id)).toEqual(want);
      }
      expect(index.lookupNow(randomBytes(32))).toBeUndefined();
    } finally {
      await index.close();
    }
  });

  it('many at once (lookupMany: a restore plan\'s lookups) equal one by one, in order, absent ones undefined: own LevelDB, a client of another owner, in memory; damage is SNAP_CORRUPT', async () => {
    const owner = { pid: process.pid, host: 'test', command: 'snap test' };
    const first = await LevelIndex.openShared(path.join(dir, 'many'), { repoId: 'r', waitMs: 5000, sink: {}, owner });
    const client = await LevelIndex.openShared(path.join(dir, 'many'), { repoId: 'r', waitMs: 5000, sink: {}, owner: { ...owner, command: 'snap client' } });
    const memory = LevelIndex.inMemory(path.join(dir, 'many-mem'));
    try {
      expect(first.isOwner).toBe(true);
      expect(client.isOwner).toBe(false);
      const entries: PackEntry[] = Array.from({ length: 300 }, (_, i) => ({ id: randomBytes(32), type: i % 7 === 0 ? 'tree' : 'blob', offset: i * 1000, length: 900 + i, rawLength: 1000 + i, codec: i % 3 }));
      const pack = toHex(randomBytes(32));
      await first.addPack(pack, 1 << 20, entries);
      await memory.addPack(pack, 1 << 20, entries);
      // Present and absent ids mixed, one id twice.
      const ids = entries.flatMap((e, i) => (i % 10 === 0 ? [e.id, randomBytes(32)] : [e.id]));
      ids.push(entries[5]!.id);
      for (const index of [first, client, memory]) {
        const one: unknown[] = [];
        for (const id of ids) one.push(await index.lookup(id));
        expect(await index.lookupMany(ids)).toEqual(one);
        expect(one.filter((l) => l === undefined)).toHaveLength(30);
      }
      expect(await first.lookupMany([])).toEqual([]);
      const bad = Buffer.from(encodeCbor([randomBytes(32), 0, 100, 50, 80, 2]));
      bad[35] = 0x3f; // a negative integer where the type is
      await (first as unknown as { kv: { write(ops: [Buffer, Buffer][]): Promise<void> } }).kv.write([[key(K_OBJECT, entries[3]!.id), bad]]);
      for (const index of [first, client]) await expect(index.lookupMany([entries[2]!.id, entries[3]!.id])).rejects.toMatchObject({ code: 'SNAP_CORRUPT' });
    } finally {
      await client.close();
      await first.close();
      await memory.close();
    }
  });

  it('one written in another valid encoding (a float for an integer) reads the same; a damaged one is SNAP_CORRUPT', async () => {
    const { index } = await LevelIndex.open(path.join(dir, 'b'), { repoId: 'r', waitMs: 0, sink: {} });
    try {
      const id = randomBytes(32);
      const pack = randomBytes(32);
      const usual = encodeCbor([pack, 0, 100, 50, 80, 2]);
      expect(usual.subarray(0, 3)).toEqual(Buffer.from([0x86, 0x58, 0x20]));
      // The offset (100, at byte 36 after the type) as a double: 0xfb and eight bytes.
      const float = Buffer.alloc(9);
      float[0] = 0xfb;
      float.writeDoubleBE(100, 1);
      const other = Buffer.concat([usual.subarray(0, 36), float, usual.subarray(38)]);
      await (index as unknown as { kv: { write(ops: [Buffer, Buffer][]): Promise<void> } }).kv.write([[key(K_OBJECT, id), other]]);
      expect(index.lookupNow(id)).toEqual({ pack: toHex(pack), type: 'blob', offset: 100, length: 50, rawLength: 80, codec: 2 });
      const bad = Buffer.from(usual);
      bad[35] = 0x3f; // a negative integer where the type is
      await (index as unknown as { kv: { write(ops: [Buffer, Buffer][]): Promise<void> } }).kv.write([[key(K_OBJECT, id), bad]]);
      expect(() => index.lookupNow(id)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));
      const cut = usual.subarray(0, usual.length - 1);
      await (index as unknown as { kv: { write(ops: [Buffer, Buffer][]): Promise<void> } }).kv.write([[key(K_OBJECT, id), cut]]);
      expect(() => index.lookupNow(id)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));
    } finally {
      await index.close();
    }
  });
});
