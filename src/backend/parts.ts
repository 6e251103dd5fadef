// Streaming shared by the object-store backends (S3, Azure Blob). Uploads: a PartSource cuts the
// caller's pieces into parts of a fixed size, streamInParts sends a blob of one part whole and a
// larger one through the backend's part upload (S3 multipart, Azure blocks), and uploadParts
// sends the parts a few at a time, recycling part buffers, so a streamed put holds
// (concurrency + 1) parts in memory. Downloads: resumingRead reads a range and picks it up where
// a connection dropped, never ending short.
import { SnapError } from '../core/errors.js';
import { shortBlobError, sizeMismatchError } from './checks.js';
import { type RetryPolicy, TransientError, backoffDelay, pause } from './retry.js';

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

/**
 * A streamed put: a source of at most one part goes to `whole` (one request), a longer one to
 * `parts` with its first part already cut. A failure closes the source.
 */
export async function streamInParts(
  name: string,
  source: AsyncIterable<Uint8Array>,
  size: number | undefined,
  partSize: number,
  whole: (data: Buffer) => Promise<void>,
  parts: (src: PartSource, first: Buffer) => Promise<void>,
): Promise<void> {
  const src = new PartSource(source[Symbol.asyncIterator](), name, size);
  try {
    const first = await src.next(Buffer.allocUnsafe(partSize));
    if (first.last) await whole(first.part);
    else await parts(src, first.part);
  } catch (e) {
    await src.close();
    throw e;
  }
}

/** One answer to a ranged read, as resumingRead needs it. */
export interface OpenedRange {
  /** The size of the whole blob. */
  total: number;
  etag?: string;
  body: AsyncIterable<Buffer>;
  /** Whether the server answered with the range asked for (false: the whole blob). */
  ranged: boolean;
  /** Let go of the connection (called once the answer is done with, read whole or not). */
  destroy(): void;
}

/**
 * The bytes [start, end) of a blob (to its end when `end` is undefined) as pieces in order.
 * `open(pos, end, etag)` asks for the bytes from `pos` (If-Match `etag` after the first answer,
 * so two versions of a blob are never spliced together); it throws a TransientError for a failure
 * worth another try. A connection that drops is picked up where it stopped, counting as one try
 * of `retry`, which every byte that arrives renews. The stream never ends short.
 */
export async function* resumingRead(o: {
  name: string;
  where: string;
  start: number;
  end: number | undefined;
  retry: RetryPolicy;
  open: (pos: number, end: number | undefined, etag: string | undefined) => Promise<OpenedRange>;
  /** Words for why reading a body failed. */
  describe: (e: unknown) => string;
  exhausted: (last: TransientError, attempts: number, elapsedMs: number) => Error;
}): AsyncIterable<Buffer> {
  const { name, where, start } = o;
  let pos = start;
  let end = o.end;
  let etag: string | undefined;
  const began = Date.now();
  for (let failures = 0; ; ) {
    let res: OpenedRange | undefined;
    try {
      res = await o.open(pos, end, etag);
      end ??= res.total;
      if (res.total < end) throw shortBlobError(name, where, start, end - start, res.total);
      if (pos > 0 && !res.ranged) throw new SnapError('SNAP_REMOTE', `${where}: GET ${name}: the server ignored the range asked for`);
      const stop = end;
      etag ??= res.etag;
      try {
        for await (const c of res.body) {
          const piece = pos + c.length > stop ? c.subarray(0, stop - pos) : c;
          pos += piece.length;
          failures = 0;
          if (piece.length > 0) yield piece;
          if (pos >= stop) break;
        }
      } catch (e) {
        throw new TransientError(`the answer was cut short: ${pos - start} of ${stop - start} bytes arrived (${o.describe(e)})`, { cause: e });
      }
      if (pos >= stop) return;
      throw new TransientError(`the answer was cut short: ${pos - start} of ${stop - start} bytes arrived`);
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      if (o.retry.stop?.aborted) throw o.retry.stop.reason; // a stopped command resumes nothing (retry.ts, `stop`)
      failures++;
      if (failures >= o.retry.attempts) throw o.exhausted(e, failures, Date.now() - began);
      await pause(o.retry, backoffDelay(o.retry, failures));
    } finally {
      res?.destroy();
    }
  }
}
