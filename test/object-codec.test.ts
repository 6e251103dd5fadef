// The one decode-and-verify path (src/store/object-codec.ts), the sparse writer and the durable
// write (src/core/sparse.ts, src/core/durable.ts) as units.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSnapError } from '../src/core/errors.js';
import { sha256 } from '../src/core/ids.js';
import { sparseRuns, writeSparse, writeSparseSync } from '../src/core/sparse.js';
import { writeFileDurable } from '../src/core/durable.js';
import { workerUrl } from '../src/core/worker-url.js';
import { CODEC_DEFLATE, CODEC_RAW, CODEC_ZSTD } from '../src/store/codec.js';
import { decodeAndVerify, decodeAndVerifySync, encodeObject, encodeObjectSync, objectId, type ObjectClaim } from '../src/store/object-codec.js';
import { tmpDir } from './helpers/cli.js';

const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(5000));

async function stored(codec: 'none' | 'deflate' | 'zstd', raw: Buffer): Promise<{ data: Buffer; claim: ObjectClaim }> {
  const c = await encodeObject(raw, codec, 3);
  return { data: Buffer.from(c.data), claim: { id: objectId(raw), codec: c.codec, rawLength: raw.length, what: 'object x' } };
}

describe('decodeAndVerify', () => {
  it('round-trips every codec, async and sync alike', async () => {
    for (const [name, want] of [['none', CODEC_RAW], ['deflate', CODEC_DEFLATE], ['zstd', CODEC_ZSTD]] as const) {
      const { data, claim } = await stored(name, text);
      expect(claim.codec).toBe(want);
      expect((await decodeAndVerify(data, claim)).equals(text)).toBe(true);
      expect(decodeAndVerifySync(data, claim).equals(text)).toBe(true);
    }
  });

  it('encodeObjectSync and encodeObject store the same bytes for zstd', async () => {
    const a = await encodeObject(text, 'zstd', 3);
    const b = encodeObjectSync(text, 'zstd', 3);
    expect(b.codec).toBe(a.codec);
    expect(Buffer.from(b.data).equals(a.data)).toBe(true);
  });

  it('refuses a wrong id, a wrong size, an unknown codec and a flipped byte, sync and async alike', async () => {
    for (const name of ['none', 'deflate', 'zstd'] as const) {
      const { data, claim } = await stored(name, text);
      const flipped = Buffer.from(data);
      flipped[flipped.length >> 1]! ^= 0x40;
      const bad: [Buffer, ObjectClaim][] = [
        [data, { ...claim, id: sha256(Buffer.from('other')) }],
        [data, { ...claim, rawLength: claim.rawLength - 1 }],
        [data, { ...claim, codec: 9 }],
        [flipped, claim],
      ];
      for (const [d, c] of bad) {
        await expect(decodeAndVerify(d, c)).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_CORRUPT') && e.message.startsWith('object x'));
        expect(() => decodeAndVerifySync(d, c)).toThrow(/^object x/);
      }
    }
  });

  it('decompresses zstd into a scratch buffer when the implementation can', async () => {
    const { data, claim } = await stored('zstd', text);
    const scratch = Buffer.alloc(text.length + 10);
    expect(decodeAndVerifySync(data, claim, undefined, scratch).equals(text)).toBe(true);
  });
});

describe('sparse writes', () => {
  const B = 64 * 1024;
  it('skips whole zero blocks and merges neighbours', () => {
    const d = Buffer.alloc(5 * B);
    d[0] = 1;
    d[B + 5] = 1;
    d[4 * B + 1] = 1;
    expect(sparseRuns(d)).toEqual([[0, 2 * B], [4 * B, 5 * B]]);
    expect(sparseRuns(Buffer.alloc(3 * B))).toEqual([]);
    expect(sparseRuns(Buffer.from('abc'))).toEqual([[0, 3]]);
  });

  it('writes the same file sync and async, with holes, and reports the end', async () => {
    const dir = tmpDir('snap-sparse-');
    const d = Buffer.concat([randomBytes(B), Buffer.alloc(2 * B), randomBytes(100), Buffer.alloc(B)]);
    const a = path.join(dir, 'a');
    const fh = await fs.promises.open(a, 'w');
    const endA = await writeSparse(fh, d, 10);
    await fh.truncate(10 + d.length);
    await fh.close();
    const b = path.join(dir, 'b');
    const fd = fs.openSync(b, 'w');
    const endB = writeSparseSync(fd, d, 10);
    fs.ftruncateSync(fd, 10 + d.length);
    fs.closeSync(fd);
    expect(endA).toBe(10 + 4 * B); // the block holding the 100 bytes is written whole; the last block is zeros
    expect(endB).toBe(endA);
    const want = Buffer.concat([Buffer.alloc(10), d]);
    expect(fs.readFileSync(a).equals(want)).toBe(true);
    expect(fs.readFileSync(b).equals(want)).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('durable writes', () => {
  it('replaces, creates only when absent, and leaves no temporary file on failure', async () => {
    const dir = tmpDir('snap-durable-');
    const dest = path.join(dir, 'f');
    const t = (n: string, publish?: 'replace' | 'create') => ({ dir, tmp: path.join(dir, `.tmp-${n}`), dest, publish });
    expect(await writeFileDurable(t('1'), 'one')).toBe(true);
    expect(await writeFileDurable(t('2'), 'two')).toBe(true);
    expect(fs.readFileSync(dest, 'utf8')).toBe('two');
    expect(await writeFileDurable(t('3', 'create'), 'three')).toBe(false);
    expect(fs.readFileSync(dest, 'utf8')).toBe('two');
    expect((fs.statSync(dest).mode & 0o777).toString(8)).toBe('600');
    await expect(
      (await import('../src/core/durable.js')).writeDurable(t('4'), async () => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(fs.readdirSync(dir)).toEqual(['f']);
    fs.rmSync(dest);
    expect(await writeFileDurable(t('5', 'create'), 'five')).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['f']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('worker files', () => {
  it('load from the compiled dist/ when the starting module is TypeScript', () => {
    for (const [name, from] of [['./worker.js', '../src/ops/restore/writer.ts'], ['./compress-worker.js', '../src/store/compress-pool.ts']] as const) {
      const u = workerUrl(name, new URL(from, import.meta.url).href);
      expect(u.pathname).toMatch(/\/dist\/(ops\/restore\/worker|store\/compress-worker)\.js$/);
      expect(fs.existsSync(u)).toBe(true);
    }
    // From dist (a global install), the sibling file itself.
    const inDist = 'file:///usr/lib/node_modules/snap-backup/dist/ops/restore/writer.js';
    expect(workerUrl('./worker.js', inDist).href).toBe('file:///usr/lib/node_modules/snap-backup/dist/ops/restore/worker.js');
  });
});
