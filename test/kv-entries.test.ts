// KV.entries: a range's entries in one array (LevelIndex.filesInDir reads a directory's files-cache
// entries with it, a thousand from LevelDB at a time instead of one promise each). It must give
// what iterate gives: on the owner's LevelDB, on a client of a shared index (paged over its socket,
// more than one page here), and in memory.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KV, KvOp } from '../src/index/kv.js';
import { MemoryKV } from '../src/index/memory-kv.js';
import { SharedKV } from '../src/index/shared-kv.js';
import { tmpDir } from './helpers/cli.js';

const OWNER = { pid: process.pid, host: 'test', command: 'snap test' };

/** Keys 0x05 | i (4 bytes, big-endian) with values of varying length, and a key on each side of the range. */
function ops(n: number): KvOp[] {
  const out: KvOp[] = [[Buffer.from([4, 0xff]), Buffer.from('before')], [Buffer.from([6]), Buffer.from('after')]];
  for (let i = 0; i < n; i++) {
    const k = Buffer.alloc(5);
    k[0] = 5;
    k.writeUInt32BE(i * 7, 1);
    out.push([k, Buffer.alloc(i % 97, i & 0xff)]);
  }
  return out;
}

async function both(kv: KV, range: { gte?: Buffer; gt?: Buffer; lt: Buffer }): Promise<{ all: [Buffer, Buffer][]; iterated: [Buffer, Buffer][] }> {
  const iterated: [Buffer, Buffer][] = [];
  for await (const e of kv.iterate(range)) iterated.push([Buffer.from(e[0]), Buffer.from(e[1])]);
  return { all: await kv.entries(range), iterated };
}

function expectSame(a: [Buffer, Buffer][], b: [Buffer, Buffer][]): void {
  expect(a.map(([k, v]) => [k.toString('hex'), v.toString('hex')])).toEqual(b.map(([k, v]) => [k.toString('hex'), v.toString('hex')]));
}

describe('KV.entries', () => {
  it('gives what iterate gives: owner, client of a shared index (several pages), memory', async () => {
    const n = 10_000; // a client's pages hold 4,096 entries
    const range = { gte: Buffer.from([5]), lt: Buffer.from([6]) };
    const mid = { gt: ops(n)[2 + 1234]![0], lt: ops(n)[2 + 5678]![0] };

    const dir = path.join(tmpDir(), 'index');
    const owner = SharedKV.create(dir, { waitMs: 5000, sink: {}, owner: OWNER });
    await owner.start();
    await owner.write(ops(n));
    const client = SharedKV.create(dir, { waitMs: 5000, sink: {}, owner: OWNER, noServe: true });
    await client.start();
    expect(owner.isOwner).toBe(true);
    expect(client.isOwner).toBe(false);
    const mem = new MemoryKV();
    await mem.write(ops(n));
    try {
      for (const kv of [owner, client, mem]) {
        const whole = await both(kv, range);
        expect(whole.all.length).toBe(n);
        expectSame(whole.all, whole.iterated);
        const part = await both(kv, mid);
        expect(part.all.length).toBe(5678 - 1234 - 1);
        expectSame(part.all, part.iterated);
        expect(await kv.entries({ gte: Buffer.from([7]), lt: Buffer.from([8]) })).toEqual([]);
      }
      expectSame((await client.entries(range)), (await owner.entries(range)));
    } finally {
      await client.close();
      await owner.close();
    }
  });
});
