import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chunkBuffer, cutPoint, cutPointJs, makeGear } from '../src/store/chunker.js';
import { SCAN_BLOCK } from '../src/store/gear-scan.js';
import { FileChunker } from '../src/store/file-chunker.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from './helpers/cli.js';
import { sha256, toHex } from '../src/core/ids.js';

const params = { algorithm: 'fastcdc-gear32-nc2' as const, minSize: 2048, avgSize: 8192, maxSize: 65536, gearSeed: '00'.repeat(32) };

function seeded(n: number, seed: number): Buffer {
  // xorshift32: deterministic pseudo-random bytes without depending on crypto's randomness.
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

describe('FastCDC chunker', () => {
  const g = makeGear(params);

  it('respects min, max and covers the input exactly', () => {
    const data = seeded(2_000_000, 7);
    const chunks = chunkBuffer(g, data);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThan(params.minSize);
      expect(c.length).toBeLessThanOrEqual(params.maxSize);
    }
    const mean = data.length / chunks.length;
    expect(mean).toBeGreaterThan(params.avgSize * 0.5);
    expect(mean).toBeLessThan(params.avgSize * 2);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const data = seeded(500_000, 3);
    const a = chunkBuffer(g, data).map((c) => c.length);
    const b = chunkBuffer(makeGear(params), data).map((c) => c.length);
    const other = chunkBuffer(makeGear({ ...params, gearSeed: '11'.repeat(32) }), data).map((c) => c.length);
    expect(a).toEqual(b);
    expect(other).not.toEqual(a);
  });

  it('resynchronises after an insertion: only the chunks around it change', () => {
    const data = seeded(3_000_000, 11);
    const edited = Buffer.concat([data.subarray(0, 1_500_000), Buffer.from('thirteen byte'), data.subarray(1_500_000)]);
    const ids = (b: Buffer) => new Set(chunkBuffer(g, b).map((c) => toHex(sha256(c))));
    const before = ids(data);
    const after = ids(edited);
    const changed = [...after].filter((id) => !before.has(id));
    expect(changed.length).toBeGreaterThanOrEqual(1);
    expect(changed.length).toBeLessThanOrEqual(2);
  });

  it('cuts all-zero data at max size (no boundary in constant input beyond min)', () => {
    const zeros = Buffer.alloc(300_000);
    const lens = chunkBuffer(g, zeros).map((c) => c.length);
    expect(Buffer.concat(chunkBuffer(g, zeros)).length).toBe(zeros.length);
    expect(new Set(lens.slice(0, -1)).size).toBe(1);
  });

  it('a file chunked in a stream gives the same chunks as in memory', () => {
    const dir = tmpDir();
    const data = Buffer.concat([seeded(1_234_567, 5), randomBytes(100)]);
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, data);
    const fd = fs.openSync(f, 'r');
    const fc = new FileChunker(fd, g);
    const streamed: Buffer[] = [];
    for (let c = fc.next(); c; c = fc.next()) streamed.push(Buffer.from(c)); // views are valid until the next call
    fs.closeSync(fd);
    expect(streamed.map((c) => c.length)).toEqual(chunkBuffer(g, data).map((c) => c.length));
    expect(Buffer.concat(streamed).equals(data)).toBe(true);
  });

  it('a file chunked in a stream gives the same chunks as in memory with the default sizes', () => {
    // 1 MiB average chunks: the reader refills at 2 MiB buffered, so a zero run with no boundary
    // for 8 MiB makes it rescan after a refill; chunks must not depend on how the file was read.
    const big = makeGear({ ...params, minSize: 512 * 1024, avgSize: 1024 * 1024, maxSize: 8 * 1024 * 1024 });
    const dir = tmpDir();
    for (let k = 1; k <= 6; k++) {
      const data = Buffer.concat([seeded(k * 1_300_000, k), Buffer.alloc(9_000_000), seeded(2_500_000, k + 10)]);
      const f = path.join(dir, `f${k}`);
      fs.writeFileSync(f, data);
      const fd = fs.openSync(f, 'r');
      const fc = new FileChunker(fd, big);
      const streamed: Buffer[] = [];
      for (let c = fc.next(); c; c = fc.next()) streamed.push(Buffer.from(c));
      fs.closeSync(fd);
      expect(streamed.map((c) => c.length)).toEqual(chunkBuffer(big, data).map((c) => c.length));
      expect(Buffer.concat(streamed).equals(data)).toBe(true);
    }
  });

  it('the WebAssembly scan cuts where the JavaScript loop does: tables, sizes, offsets, block edges', () => {
    // cutPoint scans in WebAssembly (gear-scan.ts), block by block; cutPointJs is the plain loop.
    const sizes = [
      { minSize: 2048, avgSize: 8192, maxSize: 65536 },
      { minSize: 512 * 1024, avgSize: 1024 * 1024, maxSize: 8 * 1024 * 1024 },
      // A window of a few blocks, an average below one block: cuts on both sides of block edges.
      { minSize: 100, avgSize: 256, maxSize: 3 * SCAN_BLOCK + 17 },
    ];
    let cuts = 0;
    let atMax = 0;
    for (const [k, sz] of sizes.entries()) {
      for (let seed = 1; seed <= 6; seed++) {
        const gear = makeGear({ ...params, ...sz, gearSeed: (seed * 37 + k).toString(16).padStart(2, '0').repeat(32) });
        // Random bytes, a zero run (the hash constant: no cut or a cut at every byte past min)
        // and a repeated short pattern, at an odd offset of a larger buffer.
        const data = Buffer.concat([Buffer.alloc(13, 7), seeded(sz.maxSize * 3, seed), Buffer.alloc(sz.maxSize + 5), Buffer.alloc(sz.maxSize * 2, 'abc'), seeded(sz.maxSize, seed + 99)]);
        for (let off = 13; off < data.length; ) {
          const end = Math.min(data.length, off + sz.maxSize + (seed % 3));
          const want = cutPointJs(gear, data, off, end);
          expect(cutPoint(gear, data, off, end)).toBe(want);
          if (want === sz.maxSize) atMax++;
          cuts++;
          off += want;
        }
      }
    }
    expect(cuts).toBeGreaterThan(1000);
    expect(atMax).toBeGreaterThan(10); // the limit, not only a mask, was reached
  });

  it('where WebAssembly cannot run (node --jitless), cutPoint scans in JavaScript: the same cuts', () => {
    const dist = pathToFileURL(path.join(import.meta.dirname, '..', 'dist', 'store', 'chunker.js')).href;
    const script = `
      import { makeGear, cutPoint, cutPointJs } from ${JSON.stringify(dist)};
      const g = makeGear({ minSize: 2048, avgSize: 8192, maxSize: 65536, gearSeed: '5e'.repeat(32) });
      const data = new Uint8Array(1 << 20);
      let x = 7;
      for (let i = 0; i < data.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; data[i] = x & 0xff; }
      const cuts = [];
      for (let off = 0; off < data.length; ) { const n = cutPoint(g, data, off, Math.min(data.length, off + 65536)); if (n !== cutPointJs(g, data, off, Math.min(data.length, off + 65536))) throw new Error('differs at ' + off); cuts.push(n); off += n; }
      console.log(typeof WebAssembly, cuts.length);`;
    const r = spawnSync(process.execPath, ['--jitless', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [wasm, cuts] = r.stdout.trim().split(' ');
    expect(wasm).toBe('undefined');
    expect(Number(cuts)).toBeGreaterThan(50);
  });

  it('a buffer no longer than min is one chunk', () => {
    expect(cutPoint(g, Buffer.alloc(2048, 1), 0, 2048)).toBe(2048);
  });
});
