// What the archive readers (tar-read.ts, zip-read.ts) share: the entry they yield, and a pull
// reader over a byte stream that hands out exact-size pieces without buffering file data.
import { SnapError } from '../../../core/errors.js';
import type { ArchiveEntryType } from './archive.js';

export interface ReadEntry {
  /** Path bytes as stored, without the trailing '/' of directories. */
  path: Buffer;
  type: ArchiveEntryType;
  mode: number;
  /** Absent when the archive does not record them (zip without the Info-ZIP extras). */
  uid?: number;
  gid?: number;
  uname?: Buffer;
  gname?: Buffer;
  mtime?: { sec: number; nsec: number };
  /** Bytes of data stored for the entry (a zip symlink's target counts; a tar hard link has 0). */
  size: number;
  linkTarget?: Buffer;
  devMajor?: number;
  devMinor?: number;
  /**
   * The entry's data, exactly `size` bytes; call at most once, before asking for the next entry
   * (whatever is not read is skipped).
   */
  data(): AsyncIterable<Buffer>;
}

export function corrupt(message: string): SnapError {
  return new SnapError('SNAP_CORRUPT', message);
}

/** Reads exact byte counts from an async iterable of buffers (a file or gunzip stream). */
export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes handed out so far. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>, private readonly what: string) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** Exactly `n` bytes (copied out of the stream's buffers only for small header reads); undefined at a clean end. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) {
      if (!(await this.more())) {
        if (this.buf.length === 0) return undefined;
        throw corrupt(`${this.what} is truncated at byte ${this.position + this.buf.length}`);
      }
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.position += n;
    return out;
  }

  async exact(n: number): Promise<Buffer> {
    const b = await this.read(n);
    if (!b && n > 0) throw corrupt(`${this.what} is truncated at byte ${this.position}`);
    return b ?? Buffer.alloc(0);
  }

  /** `n` bytes as they arrive, in pieces. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw corrupt(`${this.what} is truncated at byte ${this.position}`);
      const piece = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      this.position += piece.length;
      left -= piece.length;
      yield piece;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) {
      // discarded
    }
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
