// The storage-backend conformance suite: one set of tests every Backend must pass unchanged
// (modelled on restic's internal/backend/test and kopia's internal/blobtesting/verify.go).
// A backend test file calls `backendConformance(label, target)` with a factory that makes a
// fresh, empty backend per test (its own temporary folder, or its own key prefix in a bucket).
//
// What it pins down (src/backend/backend.ts states the contract):
// put/get/getRange/getStream/getInto, ranges at and past the end, list by prefix (with more
// than 1000 blobs, past S3's page size) and with every allowed name character, delete (a
// missing blob is not an error), stat/exists, putIfAbsent (one winner among concurrent
// callers), SNAP_MISSING_OBJECT for missing blobs, concurrent writers, a 64 MiB blob streamed
// in and out in bounded memory, odd names refused before anything is touched, and atomicity:
// no reader ever sees a partial blob, also when a streaming put fails midway.
import { createCipheriv, createHash } from 'node:crypto';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import type { Backend, BlobInfo } from '../../src/backend/backend.js';
import { MAX_NAME_BYTES, NAME_CHARS } from '../../src/backend/names.js';
import { isSnapError, type ErrorCode } from '../../src/core/errors.js';
import { freeBuffer } from '../../src/core/buffer-garbage.js';
import { prng } from '../helpers/maint.js';

export interface ConformanceTarget {
  /** A fresh, empty backend: its own folder or key prefix. Called once per test. */
  make(): Promise<Backend>;
  /** Why this target cannot run here (e.g. its server is not installed), or undefined. */
  unavailable?(): string | undefined;
}

export interface ConformanceOptions {
  /** Size of the large streamed blob (default 64 MiB). */
  largeBlobBytes?: number;
  /** How much more array-buffer memory a streaming put or get may hold at once (default 40 MiB). */
  streamMemoryBound?: number;
  /** Blobs in one folder for the listing test (default 1100: more than one S3 page of 1000). */
  manyBlobs?: number;
  /** Seed of the data and the random ranges (default from SNAP_TEST_SEED, else fixed). */
  seed?: number;
}

const MiB = 1 << 20;

/** Deterministic pseudo-random bytes: AES-128-CTR of zeros, keyed by the seed and a label. */
export function seededBytes(seed: number, label: string, size: number, at = 0): Buffer {
  const key = createHash('sha256').update(`${seed}/${label}`).digest().subarray(0, 16);
  const block = Math.floor(at / 16);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(block), 8);
  const c = createCipheriv('aes-128-ctr', key, iv);
  const skip = at - block * 16;
  return c.update(Buffer.alloc(size + skip)).subarray(skip);
}

/** The same bytes as seededBytes(seed, label, size), yielded `piece` bytes at a time. */
export async function* seededStream(seed: number, label: string, size: number, piece = MiB, onPiece?: () => void | Promise<void>): AsyncIterable<Buffer> {
  for (let at = 0; at < size; at += piece) {
    await onPiece?.();
    yield seededBytes(seed, label, Math.min(piece, size - at), at);
  }
}

export async function expectSnapError(p: Promise<unknown> | (() => Promise<unknown>), code: ErrorCode, mentions?: string): Promise<Error> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeDefined();
  expect(isSnapError(err), String(err)).toBe(true);
  expect((err as { code: string }).code, (err as Error).message).toBe(code);
  if (mentions !== undefined) expect((err as Error).message).toContain(mentions);
  return err as Error;
}

export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

export async function listAll(b: Backend, prefix: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for await (const x of b.list(prefix)) {
    expect(m.has(x.name), `${x.name} listed twice`).toBe(false);
    m.set(x.name, x.size);
  }
  return m;
}

/** Run `fn` over items with at most `n` at a time. */
export async function inParallel<T>(items: T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** A blob that says how long it is and what its hash is, so a reader can tell a whole one from a torn one. */
function selfDescribing(seed: number, label: string, size: number): Buffer {
  const body = seededBytes(seed, label, size - 40);
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(BigInt(size));
  return Buffer.concat([head, createHash('sha256').update(body).digest(), body]);
}

function isWhole(buf: Buffer): boolean {
  if (buf.length < 40 || Number(buf.readBigUInt64BE(0)) !== buf.length) return false;
  return createHash('sha256').update(buf.subarray(40)).digest().equals(buf.subarray(8, 40));
}

/** A garbage collector to call while measuring memory (Node exposes it when asked at run time). */
function gcFunction(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

/** Samples array-buffer memory (after a collection) above a baseline; the peak is what was held at once. */
class MemoryWatch {
  private readonly base: number;
  peak = 0;
  constructor(private readonly gc: () => void) {
    gc();
    this.base = process.memoryUsage().arrayBuffers;
  }
  sample(): void {
    this.gc();
    this.peak = Math.max(this.peak, process.memoryUsage().arrayBuffers - this.base);
  }
}

const ODD_NAMES = ['', '/', '/abs', 'abs/', '..', '.', 'a/../b', '../a', 'a/..', 'a//b', 'a/./b', '.hidden', 'a/.tmp-x', 'a\0b', 'a\\b', 'a b', 'caf\u00e9', 'a\nb', 'a?b', 'a#b', 'a%2fb', 'x'.repeat(MAX_NAME_BYTES + 1), 'x'.repeat(256)];

export function backendConformance(label: string, target: ConformanceTarget, o: ConformanceOptions = {}): void {
  const seed = o.seed ?? (Number(process.env.SNAP_TEST_SEED) || 20260301);
  const large = o.largeBlobBytes ?? 64 * MiB;
  const bound = o.streamMemoryBound ?? 40 * MiB;
  const many = o.manyBlobs ?? 1100;

  describe(`backend conformance: ${label} (seed ${seed})`, () => {
    let made: Backend[] = [];
    const open = async (): Promise<Backend> => {
      const b = await target.make();
      made.push(b);
      return b;
    };

    beforeEach((ctx) => {
      const why = target.unavailable?.();
      if (why) ctx.skip(why);
    });
    afterEach(async () => {
      for (const b of made) await b.close();
      made = [];
    });

    it('a missing blob: reads fail with SNAP_MISSING_OBJECT, stat is undefined, delete succeeds', async () => {
      const b = await open();
      const name = 'data/00/missing';
      await expectSnapError(b.get(name), 'SNAP_MISSING_OBJECT', name);
      await expectSnapError(b.getRange(name, 0, 10), 'SNAP_MISSING_OBJECT', name);
      await expectSnapError(collect(b.getStream(name)), 'SNAP_MISSING_OBJECT', name);
      await expectSnapError(collect(b.getStream(name, { offset: 1, length: 2 })), 'SNAP_MISSING_OBJECT', name);
      if (b.getInto) await expectSnapError(b.getInto(name, Buffer.alloc(16)), 'SNAP_MISSING_OBJECT', name);
      expect(await b.stat(name)).toBeUndefined();
      expect(await b.exists(name)).toBe(false);
      await b.delete(name);
      await b.delete(name);
      expect(await listAll(b, '')).toEqual(new Map());
      expect(await listAll(b, 'data/')).toEqual(new Map());
    });

    it('put then get, getInto and getStream give the bytes back; stat and exists see the blob; put replaces', async () => {
      const b = await open();
      const blobs: [string, Buffer][] = [
        ['config', Buffer.alloc(0)],
        ['snapshots/one', Buffer.from([7])],
        ['data/ab/big', seededBytes(seed, 'put', MiB + 4321)],
      ];
      for (const [name, data] of blobs) await b.put(name, data);
      for (const [name, data] of blobs) {
        expect((await b.get(name)).equals(data), name).toBe(true);
        expect((await collect(b.getStream(name))).equals(data), name).toBe(true);
        if (b.getInto) {
          expect((await b.getInto(name, Buffer.alloc(data.length + 10))).equals(data), name).toBe(true);
          expect((await b.getInto(name, Buffer.alloc(0))).equals(data), name).toBe(true);
        }
        expect(await b.stat(name)).toEqual({ name, size: data.length });
        expect(await b.exists(name)).toBe(true);
      }
      const replaced = seededBytes(seed, 'replaced', 1000);
      await b.put('data/ab/big', replaced);
      expect((await b.get('data/ab/big')).equals(replaced)).toBe(true);
      expect(await b.stat('data/ab/big')).toEqual({ name: 'data/ab/big', size: 1000 });
      // The caller's buffer is not kept: changing it afterwards changes nothing stored.
      const mine = Buffer.from('abcdef');
      await b.put('snapshots/mine', mine);
      mine.fill(0);
      expect((await b.get('snapshots/mine')).toString()).toBe('abcdef');
    });

    it('getRange and ranged getStream: random ranges, ranges ending at the end, empty ranges', async () => {
      const b = await open();
      const rnd = prng(seed);
      const size = 200_000 + Math.floor(rnd() * 100_000);
      const data = seededBytes(seed, 'range', size);
      await b.put('data/rr/blob', data);
      const ranges: [number, number][] = [[0, size], [0, 1], [size - 1, 1], [size - 100, 100], [0, 0], [size, 0], [12345, 0]];
      for (let i = 0; i < 40; i++) {
        const off = Math.floor(rnd() * size);
        ranges.push([off, Math.floor(rnd() * (size - off + 1))]);
      }
      for (const [off, len] of ranges) {
        const want = data.subarray(off, off + len);
        const got = await b.getRange('data/rr/blob', off, len);
        expect(got.length, `getRange(${off}, ${len})`).toBe(len);
        expect(got.equals(want), `getRange(${off}, ${len})`).toBe(true);
        const streamed = await collect(b.getStream('data/rr/blob', { offset: off, length: len }));
        expect(streamed.equals(want), `getStream(${off}, ${len})`).toBe(true);
      }
      // getStream's pieces are the caller's (Backend.getStream): kept uncopied to the end, they
      // still hold the blob, and freeing each as soon as it is read (the restore's spool) takes
      // nothing from the pieces after it.
      for (const [off, len] of [[0, size], [777, size - 1000]] as const) {
        const kept: Buffer[] = [];
        for await (const p of b.getStream('data/rr/blob', { offset: off, length: len })) kept.push(p);
        expect(Buffer.concat(kept).equals(data.subarray(off, off + len)), `getStream(${off}, ${len}) kept`).toBe(true);
        const copied: Buffer[] = [];
        for await (const p of b.getStream('data/rr/blob', { offset: off, length: len })) {
          copied.push(Buffer.from(p));
          freeBuffer(p);
        }
        expect(Buffer.concat(copied).equals(data.subarray(off, off + len)), `getStream(${off}, ${len}) freed as read`).toBe(true);
      }
      // What getRange and get return is the caller's: changing it (a reader opens sealed bytes in
      // place) changes nothing a later read returns.
      for (const [off, len] of [[0, size], [1000, 70_000], [size - 5, 5]] as const) {
        (await b.getRange('data/rr/blob', off, len)).fill(0xee);
        (await b.get('data/rr/blob')).fill(0xdd);
        expect((await b.getRange('data/rr/blob', off, len)).equals(data.subarray(off, off + len)), `getRange(${off}, ${len}) after a change`).toBe(true);
      }
    });

    it('a range past the end is SNAP_CORRUPT naming the blob, never a short result', async () => {
      const b = await open();
      const size = 5000;
      await b.put('data/rr/short', seededBytes(seed, 'short', size));
      for (const off of [size - 99, size - 50, size - 1, size, size + 100]) {
        await expectSnapError(b.getRange('data/rr/short', off, 100), 'SNAP_CORRUPT', 'data/rr/short');
        await expectSnapError(collect(b.getStream('data/rr/short', { offset: off, length: 100 })), 'SNAP_CORRUPT', 'data/rr/short');
      }
      await expectSnapError(b.getRange('data/rr/short', 0, size + 1), 'SNAP_CORRUPT', 'data/rr/short');
      await expectSnapError(b.getRange('data/rr/short', size + 1, 0), 'SNAP_CORRUPT', 'data/rr/short');
      for (const [off, len] of [[-1, 1], [0, -1], [0.5, 1], [0, Number.NaN]] as const) {
        await expectSnapError(b.getRange('data/rr/short', off, len), 'SNAP_INTERNAL');
      }
    });

    it('list: by folder, nested folders, sizes, everything with prefix ""', async () => {
      const b = await open();
      const names = ['config', 'snapshots/a1', 'snapshots/a2', 'data/00/p1', 'data/00/p2', 'data/ff/p3', 'locks/l1', 'datax/not-data'];
      await inParallel(names, 8, async (n, i) => b.put(n, Buffer.alloc(i * 10, i)));
      const size = (n: string): number => names.indexOf(n) * 10;
      const expectList = async (prefix: string, want: string[]): Promise<void> => {
        expect(await listAll(b, prefix), `list(${JSON.stringify(prefix)})`).toEqual(new Map(want.map((n) => [n, size(n)])));
      };
      await expectList('', names);
      await expectList('snapshots/', ['snapshots/a1', 'snapshots/a2']);
      await expectList('data/', ['data/00/p1', 'data/00/p2', 'data/ff/p3']);
      await expectList('data/00/', ['data/00/p1', 'data/00/p2']);
      await expectList('datax/', ['datax/not-data']);
      await expectList('nothing/', []);
      await expectList('data/00/p1/', []);
      for (const bad of ['data', 'data//', '/data/', '../', 'snap', './', '/', 'a/../', 'a\0/', '.x/', 'a b/', `${'x'.repeat(MAX_NAME_BYTES)}/`]) {
        await expectSnapError(listAll(b, bad), 'SNAP_INTERNAL');
      }
      await b.delete('data/00/p1');
      await expectList('data/', ['data/00/p2', 'data/ff/p3']);
    });

    it(`list: ${many} blobs in one folder, each listed once with its size`, async () => {
      const b = await open();
      const names = Array.from({ length: many }, (_, i) => `data/mm/${String(i).padStart(5, '0')}-${(i * 7919) % 10007}`);
      await inParallel(names, 16, async (n, i) => b.put(n, Buffer.alloc(i % 7, 1)));
      await b.put('data/mn', Buffer.alloc(3));
      const got = await listAll(b, 'data/mm/');
      expect(got.size).toBe(many);
      for (const [i, n] of names.entries()) expect(got.get(n), n).toBe(i % 7);
      expect((await listAll(b, 'data/')).size).toBe(many + 1);
    });

    it('names with every allowed character, and the longest allowed names, round-trip and list', async () => {
      const b = await open();
      const names = [
        `a/${NAME_CHARS}`,
        ...[...NAME_CHARS].filter((c) => c !== '.').map((c) => `chars/${c}`),
        'chars/x.y..z...',
        `long/${'n'.repeat(255)}`,
        `deep/${'s'.repeat(255)}/${'t'.repeat(MAX_NAME_BYTES - 5 - 256)}`,
        'deep/1/2/3/4/5/6/7',
      ];
      await inParallel(names, 8, async (n, i) => b.put(n, Buffer.from(`blob ${i}`)));
      for (const [i, n] of names.entries()) {
        expect((await b.get(n)).toString(), n).toBe(`blob ${i}`);
        expect(await b.stat(n), n).toEqual({ name: n, size: Buffer.byteLength(`blob ${i}`) });
      }
      expect([...(await listAll(b, '')).keys()].sort()).toEqual([...names].sort());
      expect([...(await listAll(b, 'chars/')).keys()].length).toBe(NAME_CHARS.length);
      for (const n of names) await b.delete(n);
      expect(await listAll(b, '')).toEqual(new Map());
    });

    it('odd names are refused with SNAP_INTERNAL and nothing is written', async () => {
      const b = await open();
      for (const name of ODD_NAMES) {
        const ops: [string, () => Promise<unknown>][] = [
          ['put', () => b.put(name, Buffer.from('x'))],
          ['putIfAbsent', () => b.putIfAbsent(name, Buffer.from('x'))],
          ['putStream', () => b.putStream(name, seededStream(seed, 'odd', 10))],
          ['get', () => b.get(name)],
          ['getRange', () => b.getRange(name, 0, 1)],
          ['getStream', () => collect(b.getStream(name))],
          ['stat', () => b.stat(name)],
          ['exists', () => b.exists(name)],
          ['delete', () => b.delete(name)],
        ];
        for (const [op, call] of ops) {
          const e = await expectSnapError(call, 'SNAP_INTERNAL');
          expect(e.message, `${op}(${JSON.stringify(name)})`).toMatch(/invalid blob name/);
        }
      }
      expect(await listAll(b, '')).toEqual(new Map());
    });

    it('delete removes a blob (and only it); deleting it again is not an error', async () => {
      const b = await open();
      await b.put('data/dd/one', Buffer.from('1'));
      await b.put('data/dd/two', Buffer.from('2'));
      await b.delete('data/dd/one');
      expect(await b.exists('data/dd/one')).toBe(false);
      await expectSnapError(b.get('data/dd/one'), 'SNAP_MISSING_OBJECT');
      await b.delete('data/dd/one');
      expect([...(await listAll(b, 'data/')).keys()]).toEqual(['data/dd/two']);
      // A deleted name can be written again, and putIfAbsent sees it as absent.
      expect(await b.putIfAbsent('data/dd/one', Buffer.from('again'))).toBe(true);
      expect((await b.get('data/dd/one')).toString()).toBe('again');
    });

    it('putIfAbsent: writes when absent; when present returns false and keeps the bytes', async () => {
      const b = await open();
      expect(await b.putIfAbsent('config', Buffer.from('first'))).toBe(true);
      expect(await b.putIfAbsent('config', Buffer.from('second'))).toBe(false);
      expect((await b.get('config')).toString()).toBe('first');
      await b.put('locks/x', Buffer.from('put'));
      expect(await b.putIfAbsent('locks/x', Buffer.from('other'))).toBe(false);
      expect((await b.get('locks/x')).toString()).toBe('put');
      expect(await b.putIfAbsent('locks/empty', Buffer.alloc(0))).toBe(true);
      expect(await b.putIfAbsent('locks/empty', Buffer.from('z'))).toBe(false);
      expect((await b.get('locks/empty')).length).toBe(0);
    });

    it('putIfAbsent: exactly one winner among concurrent callers, and its bytes are the blob', async (ctx: TestContext) => {
      const b = await open();
      const caps = await b.capabilities();
      expect(typeof caps.atomicPutIfAbsent).toBe('boolean');
      if (!caps.atomicPutIfAbsent) ctx.skip(`${b.location}: putIfAbsent is not atomic on this backend (capabilities say so)`);
      for (let round = 0; round < 10; round++) {
        const name = `locks/race-${round}`;
        const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`round ${round} caller ${i} `.repeat(1 + i * 50)));
        const won = await Promise.all(bodies.map((d) => b.putIfAbsent(name, d)));
        expect(won.filter(Boolean).length, `round ${round}: ${won.join(' ')}`).toBe(1);
        const winner = bodies[won.indexOf(true)]!;
        expect((await b.get(name)).equals(winner)).toBe(true);
      }
    });

    it('concurrent writers of different names all land, each whole', async () => {
      const b = await open();
      const names = Array.from({ length: 48 }, (_, i) => `data/cc/w${i}`);
      await Promise.all(
        names.map((n, i) => (i % 2 === 0 ? b.put(n, selfDescribing(seed, n, 1000 + i * 5000)) : b.putStream(n, seededStream(seed, n, 1000 + i * 5000, 64 * 1024), 1000 + i * 5000))),
      );
      for (const [i, n] of names.entries()) {
        const got = await b.get(n);
        if (i % 2 === 0) expect(isWhole(got), n).toBe(true);
        else expect(got.equals(seededBytes(seed, n, 1000 + i * 5000)), n).toBe(true);
      }
      expect((await listAll(b, 'data/cc/')).size).toBe(names.length);
    });

    it('a reader never sees a partial blob while it is replaced again and again', async () => {
      const b = await open();
      const name = 'snapshots/flip';
      const versions = Array.from({ length: 12 }, (_, i) => selfDescribing(seed, `v${i}`, 64 * 1024 + ((i * 97_531) % (2 * MiB))));
      let writing = true;
      let written = 0;
      const writer = (async () => {
        try {
          for (const [i, v] of versions.entries()) {
            if (i % 3 === 2) await b.putStream(name, (async function* () { for (let at = 0; at < v.length; at += 100_000) yield v.subarray(at, at + 100_000); })(), v.length);
            else await b.put(name, v);
            written++;
          }
        } finally {
          writing = false;
        }
      })();
      let reads = 0;
      const reader = async (): Promise<void> => {
        while (writing) {
          const before = written;
          let got: Buffer;
          try {
            got = reads % 2 ? await b.get(name) : await collect(b.getStream(name));
          } catch (e) {
            if (isSnapError(e, 'SNAP_MISSING_OBJECT') && before === 0) {
              await new Promise((r) => setTimeout(r, 5)); // before the first put completed
              continue;
            }
            throw e;
          }
          reads++;
          expect(isWhole(got), `read ${reads}: ${got.length} bytes`).toBe(true);
        }
      };
      await Promise.all([writer, reader(), reader()]);
      expect(isWhole(await b.get(name))).toBe(true);
      expect((await b.get(name)).equals(versions.at(-1)!)).toBe(true);
    });

    it('a blob is absent until its streaming put completes', async () => {
      const b = await open();
      const name = 'data/ss/slow';
      const size = 3 * MiB;
      let pieces = 0;
      let checks = 0;
      // The source waits for each check, so every check runs while the put is under way.
      const source = seededStream(seed, 'slow', size, 256 * 1024, async () => {
        pieces++;
        if (pieces === 4 || pieces === 9 || pieces === 12) {
          expect(await b.exists(name)).toBe(false);
          expect(await b.stat(name)).toBeUndefined();
          expect(await listAll(b, '')).toEqual(new Map());
          checks++;
        }
      });
      await b.putStream(name, source, size);
      expect(checks).toBe(3);
      expect(await b.stat(name)).toEqual({ name, size });
    });

    it('a streaming put whose source fails, or gives another size than announced, leaves nothing', async () => {
      const b = await open();
      const failing = async function* (): AsyncIterable<Buffer> {
        yield* seededStream(seed, 'fail', 3 * MiB, 256 * 1024);
        throw new Error('source broke');
      };
      await expect(b.putStream('data/ff/new', failing())).rejects.toThrow(/source broke/);
      await expect(b.putStream('data/ff/new', failing(), 3 * MiB)).rejects.toThrow(/source broke/);
      await expect(b.putStream('data/ff/short', seededStream(seed, 'x', 1000), 1001)).rejects.toThrow();
      await expect(b.putStream('data/ff/long', seededStream(seed, 'x', 9 * MiB, MiB), 5 * MiB)).rejects.toThrow();
      await expect(b.putStream('data/ff/long', seededStream(seed, 'x', 1001), 1000)).rejects.toThrow();
      expect(await listAll(b, '')).toEqual(new Map());
      // An existing blob stays as it was.
      await b.put('data/ff/old', Buffer.from('old bytes'));
      await expect(b.putStream('data/ff/old', failing())).rejects.toThrow(/source broke/);
      await expect(b.putStream('data/ff/old', seededStream(seed, 'x', 10), 11)).rejects.toThrow();
      expect((await b.get('data/ff/old')).toString()).toBe('old bytes');
      expect([...(await listAll(b, '')).keys()]).toEqual(['data/ff/old']);
      // A source that yields nothing makes an empty blob.
      await b.putStream('data/ff/empty', (async function* () {})(), 0);
      expect(await b.stat('data/ff/empty')).toEqual({ name: 'data/ff/empty', size: 0 });
    });

    it(`a ${large / MiB} MiB blob streams in and out in bounded memory`, async (ctx: TestContext) => {
      const b = await open();
      const name = 'data/ll/large';
      const gc = gcFunction();
      if (!gc) ctx.annotate('no gc() available: memory not measured');
      const putMem = gc ? new MemoryWatch(gc) : undefined;
      const want = createHash('sha256');
      const source = async function* (): AsyncIterable<Buffer> {
        for await (const p of seededStream(seed, 'large', large, MiB, () => putMem?.sample())) {
          want.update(p);
          yield p;
        }
      };
      await b.putStream(name, source(), large);
      expect(await b.stat(name)).toEqual({ name, size: large });
      const getMem = gc ? new MemoryWatch(gc) : undefined;
      const got = createHash('sha256');
      let n = 0;
      for await (const p of b.getStream(name)) {
        got.update(p);
        if (Math.floor((n + p.length) / MiB) > Math.floor(n / MiB)) getMem?.sample(); // once a MiB
        n += p.length;
      }
      expect(n).toBe(large);
      expect(got.digest('hex')).toBe(want.digest('hex'));
      // A range from the middle to the end, streamed.
      const tail = await collect(b.getStream(name, { offset: large - 3 * MiB - 5, length: 3 * MiB + 5 }));
      expect(tail.equals(seededBytes(seed, 'large', 3 * MiB + 5, large - 3 * MiB - 5))).toBe(true);
      await b.delete(name);
      if (putMem && getMem) {
        ctx.annotate(`held at most ${(putMem.peak / MiB).toFixed(1)} MiB putting, ${(getMem.peak / MiB).toFixed(1)} MiB getting`);
        expect(putMem.peak, 'array-buffer memory held during putStream').toBeLessThan(bound);
        expect(getMem.peak, 'array-buffer memory held during getStream').toBeLessThan(bound);
      }
    });

    it('capabilities and location describe the backend', async () => {
      const b = await open();
      const caps = await b.capabilities();
      expect(caps).toHaveProperty('atomicPutIfAbsent');
      expect(typeof b.location).toBe('string');
      expect(b.location.length).toBeGreaterThan(0);
    });
  });
}

export type { BlobInfo };
