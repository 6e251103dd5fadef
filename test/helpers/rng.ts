// Seeded randomness for every test (one implementation: mulberry32), so a failing random choice
// replays from its seed. `Rng` drives the torture suite; `prng` is the same generator as a bare
// function returning floats in [0, 1); `seededBytes` is incompressible data, the same in every run.

import { createCipheriv } from 'node:crypto';

/** mulberry32: tiny, fast, good enough to drive test choices reproducibly. */
export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }

  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(a: readonly T[]): T {
    if (a.length === 0) throw new Error('pick from an empty list');
    return a[this.int(0, a.length - 1)]!;
  }

  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(this.u32(), i);
    for (; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }

  /** A child generator: independent streams for independent parts of one test. */
  fork(): Rng {
    return new Rng(this.u32());
  }
}

/** The same generator as Rng(seed).float(), as a bare function. */
export function prng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.float();
}

/** `n` bytes that look random and are the same in every run (AES-256-CTR of zeros under a key from `seed`): incompressible test data. */
export function seededBytes(n: number, seed: number): Buffer {
  return createCipheriv('aes-256-ctr', Buffer.alloc(32, seed), Buffer.alloc(16)).update(Buffer.alloc(n));
}
