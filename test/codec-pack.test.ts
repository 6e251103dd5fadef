import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CODEC_DEFLATE, CODEC_RAW, CODEC_ZSTD, compress, compressSync, decompress, TRIAL_MIN_BYTES } from '../src/store/codec.js';
import { compressBatch } from '../src/store/compress-worker.js';
import { PLAIN } from '../src/store/object-codec.js';
import { verifyPackSync } from '../src/store/pack-verify.js';
import { openBlob, sealBlob } from '../src/backend/encrypted.js';
import { decodePackHeader, MAX_HEADER, MAX_PACK_ENTRIES, PackBuilder, readPackHeader, packName, TRAILER_BYTES } from '../src/store/pack.js';
import { LocalBackend } from '../src/backend/local.js';
import { sha256 } from '../src/core/ids.js';
import { isSnapError } from '../src/core/errors.js';
import { tmpDir } from './helpers/cli.js';

describe('object codec', () => {
  it('compresses text and round-trips it', async () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(5000));
    const c = await compress(text, 'deflate', 1);
    expect(c.codec).toBe(CODEC_DEFLATE);
    expect(c.data.length).toBeLessThan(text.length / 10);
    expect((await decompress(c.codec, c.data, text.length, 'x')).equals(text)).toBe(true);
  });

  it('keeps incompressible data raw (sampled and whole)', async () => {
    for (const n of [1000, 100_000, 1_000_000]) {
      const r = randomBytes(n);
      const c = await compress(r, 'deflate', 1);
      expect(c.codec).toBe(CODEC_RAW);
      expect(c.data.equals(r)).toBe(true);
    }
  });

  it('rejects a wrong length and an unknown codec as corrupt', async () => {
    const text = Buffer.from('abc'.repeat(1000));
    const c = await compress(text, 'deflate', 1);
    await expect(decompress(c.codec, c.data, text.length - 1, 'obj')).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_CORRUPT'));
    await expect(decompress(9, c.data, text.length, 'obj')).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_CORRUPT'));
  });
});

describe('zstd objects (the default codec)', () => {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(5000));

  it('compresses text, round-trips it, and keeps random data raw', async () => {
    const c = await compress(text, 'zstd', 3);
    expect(c.codec).toBe(CODEC_ZSTD);
    expect(c.data.length).toBeLessThan(text.length / 10);
    expect((await decompress(c.codec, c.data, text.length, 'x')).equals(text)).toBe(true);
    const r = randomBytes(200_000);
    expect((await compress(r, 'zstd', 3)).codec).toBe(CODEC_RAW);
  });

  it('an object guessed incompressible is tried fast first: random data stays raw, anything zstd would shrink is compressed as without the guess', async () => {
    const big = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(30_000));
    expect(big.length).toBeGreaterThanOrEqual(TRIAL_MIN_BYTES);
    const r = randomBytes(1 << 20);
    const raw = compressSync(r, 'zstd', 3, true);
    expect(raw.codec).toBe(CODEC_RAW);
    expect(raw.data === r).toBe(true);
    const plain = Buffer.from(compressSync(big, 'zstd', 3).data);
    const guessed = compressSync(big, 'zstd', 3, true);
    expect(guessed.codec).toBe(CODEC_ZSTD);
    expect(guessed.data.equals(plain)).toBe(true);
    // Random bytes repeated far apart: every sample of the object looks incompressible, yet zstd
    // stores it in an eighth. The trial reads it whole, so it is compressed.
    const block = randomBytes(128 * 1024);
    const repeats = Buffer.concat(Array.from({ length: 8 }, () => block));
    const c = compressSync(repeats, 'zstd', 3, true);
    expect(c.codec).toBe(CODEC_ZSTD);
    expect(c.data.length).toBeLessThan(repeats.length / 4);
    expect((await decompress(c.codec, Buffer.from(c.data), repeats.length, 'x')).equals(repeats)).toBe(true);
  });

  it('a compression thread guesses from the large object before: random, random, text, small text, random all round-trip', async () => {
    const big = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(30_000));
    const small = Buffer.from('a small text object\n'.repeat(100));
    const objs = [randomBytes(1 << 20), randomBytes(TRIAL_MIN_BYTES), big, small, randomBytes(600_000)];
    const ring = new Uint8Array(new SharedArrayBuffer(objs.reduce((n, o) => n + o.length, 0)));
    const pairs: number[] = [];
    let off = 0;
    for (const o of objs) {
      ring.set(o, off);
      pairs.push(off, o.length);
      off += o.length;
    }
    const out = compressBatch(ring, Int32Array.from(pairs), 3, PLAIN);
    expect(Array.from({ length: objs.length }, (_, i) => out[2 * i])).toEqual([CODEC_RAW, CODEC_RAW, CODEC_ZSTD, CODEC_ZSTD, CODEC_RAW]);
    for (const [i, o] of objs.entries()) {
      const stored = Buffer.from(ring.buffer, pairs[2 * i]!, out[2 * i + 1]!);
      expect((await decompress(out[2 * i]!, Buffer.from(stored), o.length, 'x')).equals(o)).toBe(true);
    }
  });

  it('refuses a frame whose declared size differs from the recorded one, or garbage', async () => {
    const c = await compress(text, 'zstd', 3);
    for (const [data, len] of [
      [c.data, text.length + 1],
      [c.data, 10],
      [Buffer.from('definitely not a zstd frame'), 27],
      [c.data.subarray(0, c.data.length - 5), text.length],
    ] as const) {
      await expect(decompress(CODEC_ZSTD, Buffer.from(data), len, 'obj')).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_CORRUPT'));
    }
  });
});

describe('packs', () => {
  it('a sealed pack is intact when every segment opens under its name (its plaintext is not hashed again); an unsealed one when it hashes to its name', () => {
    const b = new PackBuilder();
    const objs = [randomBytes(100_000), randomBytes(70_000)];
    for (const o of objs) b.add(sha256(o), 'blob', o, o.length, CODEC_RAW);
    const pack = b.seal();
    const keys = { dataKey: randomBytes(32) };
    // Its own name, and a name that is not its hash: what the tags prove is that the repository's
    // key sealed these bytes under that name.
    for (const name of [pack.id, 'ab'.repeat(32)]) {
      const sealed = sealBlob(keys, packName(name), pack.bytes);
      const o = openBlob(keys, packName(name), sealed, true);
      expect(o.damaged).toBe(0);
      const v = verifyPackSync(o.bytes, name, PLAIN, Buffer.alloc(0), { damaged: o.damaged }).verdict;
      expect(v.intact).toBe(true);
      expect(v.failures).toEqual([]);
      expect(verifyPackSync(Buffer.from(pack.bytes), name, PLAIN, Buffer.alloc(0)).verdict.intact).toBe(name === pack.id);
      // One byte changed in the second 64 KiB segment (after the file nonce, the first segment
      // and its tag): that segment fails its tag, the pack is damaged, and the objects in it fail.
      const bad = Buffer.from(sealed);
      bad[32 + 65536 + 16 + 10]! ^= 0x01;
      const ob = openBlob(keys, packName(name), bad, true);
      expect(ob.damaged).toBe(1);
      const vb = verifyPackSync(ob.bytes, name, PLAIN, Buffer.alloc(0), { damaged: ob.damaged }).verdict;
      expect(vb.intact).toBe(false);
      expect(vb.failures.map((f) => f.index)).toEqual([0, 1]);
    }
  });

  it('writes a self-describing pack and reads its header back', async () => {
    const dir = tmpDir();
    const be = new LocalBackend(dir);
    const b = new PackBuilder();
    const objs = [Buffer.from('one'), Buffer.from('two two'), randomBytes(5000)];
    for (const o of objs) b.add(sha256(o), 'blob', o, o.length, CODEC_RAW);
    const sealed = b.seal();
    expect(sealed.id).toBe(sha256(sealed.bytes).toString('hex'));
    await be.put(packName(sealed.id), sealed.bytes);
    const entries = await readPackHeader(be, sealed.id);
    expect(entries.map((e) => e.id.toString('hex'))).toEqual(objs.map((o) => sha256(o).toString('hex')));
    for (const [i, e] of entries.entries()) {
      const got = await be.getRange(packName(sealed.id), e.offset, e.length);
      expect(got.equals(objs[i]!)).toBe(true);
    }
    // Cached read handles are closed by close(); Node 26 fails a process that leaves a FileHandle to the GC (22 and 24 warn).
    await be.close();
  });

  it('reports a truncated pack or a header pointing outside the data as corrupt', async () => {
    const dir = tmpDir();
    const be = new LocalBackend(dir);
    const b = new PackBuilder();
    b.add(sha256(Buffer.from('x')), 'tree', Buffer.from('x'), 1, CODEC_RAW);
    const s = b.seal();
    await be.put(packName(s.id), s.bytes.subarray(0, s.bytes.length - 3));
    await expect(readPackHeader(be, s.id)).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_CORRUPT'));
    const hlen = s.bytes.readUInt32LE(s.bytes.length - TRAILER_BYTES);
    const header = s.bytes.subarray(s.bytes.length - TRAILER_BYTES - hlen, s.bytes.length - TRAILER_BYTES);
    expect(() => decodePackHeader(header, 'p', 0)).toThrow(/past the pack/);
    await be.close();
  });
});

describe('packs of many tiny objects', () => {
  it('a pack is full at MAX_PACK_ENTRIES objects, and a full pack with the widest entries has a header readers accept', async () => {
    // Found by the format review: sealing only by data size let a 16 MiB pack of 10-byte objects
    // hold 1.6 million entries, a 74 MB header that readPackHeader refuses as damage.
    const b = new PackBuilder(64 * 1024 * 1024);
    const data = Buffer.alloc(1, 7);
    const id = Buffer.alloc(32, 0xee);
    for (let i = 0; i < MAX_PACK_ENTRIES - 1; i++) b.add(id, 'blob', data, 0xffffffff, 0xff);
    expect(b.isFull(16 * 1024 * 1024)).toBe(false);
    b.add(id, 'blob', data, 0xffffffff, 0xff);
    expect(b.isFull(16 * 1024 * 1024)).toBe(true);
    const { bytes } = b.seal();
    const hlen = bytes.readUInt32LE(bytes.length - TRAILER_BYTES);
    expect(hlen).toBeLessThanOrEqual(MAX_HEADER);
    const dir = tmpDir('snap-pack-entries-');
    const backend = new LocalBackend(dir);
    await backend.put(packName('ab'.repeat(32)), bytes);
    const entries = await readPackHeader(backend, 'ab'.repeat(32));
    expect(entries).toHaveLength(MAX_PACK_ENTRIES);
    expect(entries[MAX_PACK_ENTRIES - 1]!.rawLength).toBe(0xffffffff);
  }, 120_000);
});
