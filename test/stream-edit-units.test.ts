// Pure parts of the stream backup and snapshot editing: the stream chunker cuts exactly where the
// in-memory chunker does, however the stream is split; --files-from parsing; tag edits.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkBuffer, makeGear } from '../src/store/chunker.js';
import { chunkWindow, streamChunks } from '../src/store/stream-chunker.js';
import { parseFilesFrom } from '../src/model/files-from.js';
import { editTags } from '../src/ops/maintain/tag.js';

const g = makeGear({ algorithm: 'fastcdc-gear32-nc2', minSize: 2048, avgSize: 8192, maxSize: 65536, gearSeed: '11'.repeat(32) });

async function* pieces(data: Buffer, sizes: () => number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; ) {
    const n = Math.min(sizes(), data.length - off);
    yield data.subarray(off, off + n);
    off += n;
  }
}

describe('streamChunks', () => {
  const data = Buffer.concat([randomBytes(700_000), Buffer.alloc(300_000), randomBytes(123_457)]);
  // [label, piece sizes, how much of the data] (1-byte pieces over the whole input would be slow).
  for (const [label, sizes, length] of [
    ['1-byte pieces', () => 1, 200_000],
    ['pipe-sized pieces', () => 65536, data.length],
    ['pieces of random sizes', () => 1 + Math.floor(Math.random() * 200_000), data.length],
    ['one piece', () => Number.MAX_SAFE_INTEGER, data.length],
  ] as const) {
    it(`cuts where chunkBuffer does: ${label}`, async () => {
      const part = data.subarray(0, length);
      const total = { bytes: 0 };
      const got: string[] = [];
      for await (const c of streamChunks(g, pieces(part, sizes), total)) got.push(Buffer.from(c).toString('hex'));
      expect(got).toEqual(chunkBuffer(g, part).map((c) => Buffer.from(c).toString('hex')));
      expect(total.bytes).toBe(length);
    });
  }

  it('a window given is cut in for stream after stream, as a new one would cut (snap copy keeps one per file it cuts)', async () => {
    const window = chunkWindow(g);
    for (const part of [data, data.subarray(0, 5000), Buffer.alloc(0), data.subarray(100_000, 400_000), Buffer.from('tiny')]) {
      const total = { bytes: 0 };
      const got: string[] = [];
      for await (const c of streamChunks(g, pieces(part, () => 40_000), total, window)) {
        expect(c.buffer).toBe(window.buffer);
        got.push(Buffer.from(c).toString('hex'));
      }
      expect(got).toEqual(chunkBuffer(g, part).map((c) => Buffer.from(c).toString('hex')));
      expect(total.bytes).toBe(part.length);
    }
  });

  it('an empty stream gives no chunks', async () => {
    const total = { bytes: 0 };
    const got = [];
    for await (const c of streamChunks(g, pieces(Buffer.alloc(0), () => 1), total)) got.push(c);
    expect(got).toEqual([]);
  });
});

describe('parseFilesFrom', () => {
  const b = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
  const strs = (bs: Buffer[]): string[] => bs.map((x) => x.toString('latin1'));

  it('lines: CRLF, comments and empty lines; bytes kept as they are', () => {
    expect(strs(parseFilesFrom(b('/a\r\n# c\n\n/b c \n/d\xff\n'), 'lines'))).toEqual(['/a', '/b c ', '/d\xff']);
  });
  it('verbatim: every non-empty line exactly, # included', () => {
    expect(strs(parseFilesFrom(b('#x\n/a\r\n\n'), 'verbatim'))).toEqual(['#x', '/a\r']);
  });
  it('raw: NUL-separated, newlines inside names', () => {
    expect(strs(parseFilesFrom(b([0x2f, 0x61, 0x0a, 0x62, 0, 0, 0x2f, 0x63, 0]), 'raw'))).toEqual(['/a\nb', '/c']);
  });
});

describe('editTags', () => {
  it('adds, removes, sets; sorted and unique; empty tags dropped', () => {
    expect(editTags(['b', 'a'], { add: ['c', 'a'] })).toEqual(['a', 'b', 'c']);
    expect(editTags(['b', 'a'], { remove: ['a', 'zz'] })).toEqual(['b']);
    expect(editTags(['b', 'a'], { set: ['x'] })).toEqual(['x']);
    expect(editTags(['b'], { set: [''] })).toEqual([]);
  });
});
