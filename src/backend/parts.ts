// Streamed uploads cut into parts, shared by the object-store backends (S3 multipart uploads,
// Azure block blobs): a PartSource cuts the caller's pieces into parts of a fixed size, and
// uploadParts sends them a few at a time, recycling part buffers, so a streamed put of any size
// holds (concurrency + 1) parts in memory.
import { sizeMismatchError } from './checks.js';

/** The total size in a Content-Range header: `bytes 0-99/1234`, or for a 416 answer `bytes *` then `/1234`. */
export function totalSize(h: string | string[] | undefined): number | undefined {
  const m = typeof h === 'string' ? /\/(\d+)\s*$/.exec(h) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * Cuts a source of pieces into parts of a given size, copying (so the source may reuse its
 * pieces), keeping the count, and knowing after each part whether the source has ended.
 */
export class PartSource {
  private carry: Uint8Array | undefined;
  private ended = false;
  private total = 0;
  constructor(
    private readonly it: AsyncIterator<Uint8Array>,
    private readonly name: string,
    private readonly size: number | undefined,
  ) {}

  /** Fill `buf` (a part); the part is the filled view of it. */
  async next(buf: Buffer): Promise<{ part: Buffer; last: boolean }> {
    const partSize = buf.length;
    let n = 0;
    while (n < partSize && (this.carry || !this.ended)) {
      if (!this.carry) {
        const r = await this.it.next();
        if (r.done) this.ended = true;
        else this.carry = r.value;
        continue;
      }
      const take = Math.min(partSize - n, this.carry.length);
      buf.set(this.carry.subarray(0, take), n);
      n += take;
      this.total += take;
      this.carry = take < this.carry.length ? this.carry.subarray(take) : undefined;
      if (this.size !== undefined && this.total > this.size) throw sizeMismatchError(this.name, this.total, this.size);
    }
    if (!this.carry && !this.ended) {
      // The part is full: ask for the next piece now, to know whether this part is the last.
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else this.carry = r.value;
    }
    const last = this.ended && !this.carry;
    if (last && this.size !== undefined && this.total !== this.size) throw sizeMismatchError(this.name, this.total, this.size);
    return { part: buf.subarray(0, n), last };
  }

  async close(): Promise<void> {
    if (!this.ended) await this.it.return?.().catch(() => {});
  }
}

/**
 * Send the parts of `src` (the first already cut: `first`) with `send(part, partNumber)`, at
 * most `concurrency` at a time, numbering from 1; returns the number of parts once all are sent.
 * The first failure stops the cutting and is thrown after the parts in flight have settled.
 * A part's buffer is reused for a later part once its send has settled.
 */
export async function uploadParts(src: PartSource, first: Buffer, partSize: number, concurrency: number, send: (part: Buffer, partNumber: number) => Promise<void>): Promise<number> {
  const inflight = new Set<Promise<void>>();
  const free: Buffer[] = [];
  let failure: unknown;
  const start = (part: Buffer, partNumber: number): void => {
    const p = send(part, partNumber)
      .catch((e: unknown) => {
        failure ??= e;
      })
      .finally(() => {
        inflight.delete(p);
        free.push(Buffer.from(part.buffer, part.byteOffset, partSize));
      });
    inflight.add(p);
  };
  try {
    let part = { part: first, last: false };
    for (let n = 1; ; n++) {
      start(part.part, n);
      if (part.last) {
        await Promise.all(inflight);
        if (failure !== undefined) throw failure;
        return n;
      }
      while (inflight.size >= concurrency && failure === undefined) await Promise.race(inflight);
      if (failure !== undefined) throw failure;
      part = await src.next(free.pop() ?? Buffer.allocUnsafe(partSize));
    }
  } finally {
    await Promise.allSettled(inflight);
  }
}
