// Cipher outputs a thread drops (core/buffer-garbage.ts): node:crypto returns every update's output
// in an ArrayBuffer of its own, and a worker thread that does little else let them pile up to
// V8's external-memory limit (tens of MiB per thread) before anything collected them. Sealing and
// opening through core/crypto.ts on a worker thread must keep them within a few MiB. Real threads,
// the compiled module (dist/, built by `npm run build`, as the CLI's own threads load it).
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SCAVENGE_BYTES } from '../src/core/buffer-garbage.js';

const CRYPTO = pathToFileURL(path.resolve(import.meta.dirname, '../dist/core/crypto.js')).href;

/** On a new thread: seal or open `count` segments of 64 KiB through core/crypto.ts; the most array-buffer memory the thread held. */
function peakOnThread(kind: 'seal' | 'open', count: number): Promise<number> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { randomBytes } = require('node:crypto');
    import(workerData.mod).then(({ gcmSeal, gcmOpen }) => {
      const key = randomBytes(32), nonce = randomBytes(12), ad = Buffer.from('data/ab/ab12'), seg = randomBytes(65536);
      const sealed = gcmSeal(key, nonce, seg, ad);
      const out = Buffer.alloc(sealed.length);
      let peak = 0;
      for (let i = 0; i < workerData.count; i++) {
        if (workerData.kind === 'seal') gcmSeal(key, nonce, seg, ad, out, 0);
        else if (!gcmOpen(key, nonce, sealed, ad).equals(seg)) throw new Error('did not open');
        if (i % 16 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      }
      parentPort.postMessage(peak);
    });`;
  const w = new Worker(code, { eval: true, workerData: { mod: CRYPTO, kind, count } });
  return new Promise((resolve, reject) => {
    w.once('message', (m: number) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

describe('cipher outputs on threads', () => {
  it('sealing or opening 256 MiB in 64 KiB segments on a thread holds at most a few MiB of dropped outputs', async () => {
    const limit = 2 * SCAVENGE_BYTES;
    for (const kind of ['open', 'seal'] as const) {
      const peak = await peakOnThread(kind, 4096);
      expect(peak, `${kind}: ${(peak / 2 ** 20).toFixed(1)} MiB of array buffers`).toBeLessThan(limit);
    }
  });
});
