// Cipher outputs a thread drops (core/buffer-garbage.ts): node:crypto returns every update's output
// in an ArrayBuffer of its own, and a worker thread that does little else let them pile up to
// V8's external-memory limit (tens of MiB per thread) before anything collected them. Sealing and
// opening through the real paths (core/crypto.ts, encrypted.ts's openBlob, a thread's reads of a
// local encrypted repository's segments) on a worker thread must keep them within a few MiB, on
// every Node line: detached at once where the runtime can (22+), else collected as they go. Real
// threads, the compiled modules (dist/, built by `npm run build`, as the CLI's own threads load them).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { SCAVENGE_BYTES, freeBuffer } from '../src/core/buffer-garbage.js';
import { EncryptedBackend, SEGMENT_BYTES, sealBlob } from '../src/backend/encrypted.js';
import { LocalBackend } from '../src/backend/local.js';
import { trackedDirs } from './helpers/cli.js';

const DIST = path.resolve(import.meta.dirname, '../dist');
const mod = (p: string): string => pathToFileURL(path.join(DIST, p)).href;
const tmp = trackedDirs('buffer-garbage');
afterAll(() => tmp.cleanup());

const canDetach = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

type Kind = 'seal' | 'open' | 'segments';

/**
 * On a new thread: `kind` 256 MiB in 64 KiB segments, through the module that does it in snap;
 * the most array-buffer memory the thread held. seal: gcmSeal into a buffer of the caller's (a
 * pack sealed in place); open: openBlob of a 1 MiB blob into a scratch buffer (check's threads);
 * segments: a ThreadBlobReader reading a few bytes of each segment of a 16 MiB blob in turn (the
 * restore writers' reads of small objects, each segment opened alone and kept a while).
 */
function peakOnThread(kind: Kind, workerData: Record<string, unknown>): Promise<number> {
  const code = `
    const { parentPort, workerData: w } = require('node:worker_threads');
    const { randomBytes } = require('node:crypto');
    (async () => {
      const [{ gcmSeal }, { openBlob, sealBlob }, { ThreadBlobReader }] = await Promise.all([import(w.crypto), import(w.encrypted), import(w.reads)]);
      const keys = { dataKey: Buffer.from(w.dataKey) };
      let peak = 0;
      const sample = (i) => { if (i % 16 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers); };
      if (w.kind === 'seal') {
        const key = randomBytes(32), nonce = randomBytes(12), ad = Buffer.from('data/ab/ab12'), seg = randomBytes(65536);
        const out = Buffer.alloc(seg.length + 16);
        for (let i = 0; i < 4096; i++) { gcmSeal(key, nonce, seg, ad, out, 0); sample(i); }
      } else if (w.kind === 'open') {
        const plain = randomBytes(1 << 20);
        const sealed = sealBlob(keys, 'data/ab/ab12', plain);
        const into = Buffer.alloc(plain.length);
        for (let i = 0; i < 256; i++) {
          if (!openBlob(keys, 'data/ab/ab12', sealed, false, into).bytes.equals(plain)) throw new Error('did not open');
          sample(i * 16);
        }
      } else {
        const reader = new ThreadBlobReader({ root: w.root, keys });
        for (let i = 0; i < 4096; i++) {
          const s = i % w.segments;
          const got = reader.read(w.name, s * 65536 + 100, 8);
          if (got.readUInt32LE(0) !== s) throw new Error('segment ' + s + ' read wrong');
          sample(i);
        }
        reader.close();
      }
      parentPort.postMessage(peak);
    })().catch((e) => parentPort.postMessage(String(e && e.stack || e)));`;
  const data = { kind, crypto: mod('core/crypto.js'), encrypted: mod('backend/encrypted.js'), reads: mod('backend/thread-reads.js'), ...workerData };
  const w = new Worker(code, { eval: true, workerData: data });
  return new Promise((resolve, reject) => {
    w.once('message', (m: number | string) => {
      void w.terminate();
      if (typeof m === 'string') reject(new Error(m));
      else resolve(m);
    });
    w.once('error', reject);
  });
}

describe('cipher outputs on threads', () => {
  it('sealing, opening blobs, or reading segment after segment of 256 MiB on a thread holds at most a few MiB of dropped outputs', async () => {
    const keys = { dataKey: randomBytes(32) };
    // A local encrypted repository's blob of 16 MiB, each segment starting at byte 100 with its number.
    const root = tmp.make('snap-buffer-garbage-');
    const name = `data/ab/${'ab'.repeat(32)}`;
    const segments = 256;
    const plain = randomBytes(segments * SEGMENT_BYTES);
    for (let s = 0; s < segments; s++) plain.writeUInt32LE(s, s * SEGMENT_BYTES + 100);
    fs.mkdirSync(path.join(root, 'data/ab'), { recursive: true });
    fs.writeFileSync(path.join(root, name), sealBlob(keys, name, plain));

    const limit = 2 * SCAVENGE_BYTES;
    for (const kind of ['seal', 'open', 'segments'] as const) {
      const peak = await peakOnThread(kind, { dataKey: keys.dataKey, root, name, segments });
      expect(peak, `${kind}: ${(peak / 2 ** 20).toFixed(1)} MiB of array buffers`).toBeLessThan(limit);
    }
  });
});

describe('freeBuffer', () => {
  it('frees a buffer that is all of its memory (detached where the runtime can), and never one that shares it', () => {
    // Slices of Node's pool: other buffers share their memory.
    const a = Buffer.from('hello');
    const b = Buffer.from('world');
    freeBuffer(a);
    expect(a.toString()).toBe('hello');
    expect(b.toString()).toBe('world');
    // A view of a larger buffer.
    const whole = Buffer.alloc(1000, 7);
    freeBuffer(whole.subarray(10, 20));
    expect(whole.length).toBe(1000);
    expect(whole[15]).toBe(7);
    // A buffer of its own: its memory gone at once on Node 22+ (no collection), kept as it was on 20.
    const own = Buffer.allocUnsafeSlow(4 << 20);
    own.fill(1);
    const before = process.memoryUsage().arrayBuffers;
    freeBuffer(own);
    if (canDetach) {
      expect(own.length).toBe(0);
      expect(before - process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(4 << 20);
    } else {
      expect(own.length).toBe(4 << 20);
    }
  });

  it("an encrypted backend's reads stay what they were while its segment cache lets segments go", async () => {
    // More single segments than the cache keeps (32), each read's result held: what a read
    // returned is the caller's, whatever the cache then frees.
    const backend = new EncryptedBackend(new LocalBackend(tmp.make('snap-buffer-garbage-')), { dataKey: randomBytes(32) });
    const plain = randomBytes(80 * SEGMENT_BYTES);
    const name = `data/cd/${'cd'.repeat(32)}`;
    await backend.put(name, plain);
    const held: [number, Buffer][] = [];
    for (let round = 0; round < 2; round++) {
      for (let s = 0; s < 80; s++) {
        const at = s * SEGMENT_BYTES + 1000 + round;
        held.push([at, await backend.getRange(name, at, 3000)]);
      }
    }
    for (const [at, got] of held) expect(got.equals(plain.subarray(at, at + 3000)), `bytes at ${at}`).toBe(true);
  });
});
