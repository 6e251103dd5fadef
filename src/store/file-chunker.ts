// Reads a file descriptor and yields content-defined chunks, holding at most two maximum-size
// chunks of the file in memory whatever the file's size. Reads are synchronous: warm-cache
// reads from Node are 3.4x faster sync than through fs.promises (shared/bench-kit/RESULTS.md §3.5).
import * as fs from 'node:fs';
import { cutPoint, type Gear } from './chunker.js';

const READ_SIZE = 1024 * 1024;
/**
 * Refill once fewer bytes than this are buffered. Refilling moves the buffered tail to the front;
 * keeping `max` (8 MiB) buffered at all times moved ~7 MiB for every 1 MiB chunk, 4 GB of memmove
 * for the corpus's 600 MB of large files. A chunk longer than what is buffered is rescanned after
 * a refill (cutPoint's answer depends only on the bytes up to the boundary, so chunks are the same).
 */
const LOW_WATER = 2 * READ_SIZE;

export class FileChunker {
  private buf: Buffer;
  private start = 0;
  private end = 0;
  private eof = false;
  private limit = Infinity;
  bytesRead = 0;
  private readonly lowWater: number;

  constructor(private fd: number, private readonly gear: Gear) {
    this.buf = Buffer.allocUnsafe(gear.max + READ_SIZE);
    this.lowWater = Math.min(LOW_WATER, gear.max);
  }

  /** Start on another file, reusing the buffer (allocating 9 MiB per small file would dominate). */
  /**
   * `limit` stops reading at the size the file had when it was stat'ed: a file that keeps growing
   * (a log being written) would otherwise never end. The caller detects the change afterwards.
   */
  reset(fd: number, limit = Infinity): void {
    this.fd = fd;
    this.limit = limit;
    this.start = 0;
    this.end = 0;
    this.eof = false;
    this.bytesRead = 0;
  }

  private fill(): void {
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    while (!this.eof && this.end < this.buf.length) {
      const want = Math.min(READ_SIZE, this.buf.length - this.end, this.limit - this.bytesRead);
      if (want <= 0) {
        this.eof = true;
        break;
      }
      const n = fs.readSync(this.fd, this.buf, this.end, want, null);
      if (n === 0) this.eof = true;
      this.end += n;
      this.bytesRead += n;
    }
  }

  /**
   * The next chunk, or undefined at the end of the file. It is a view of the chunker's buffer,
   * valid until the next call: copy it to keep it (ObjectStore.add does when it must).
   */
  next(): Buffer | undefined {
    if (this.end - this.start < this.lowWater && !this.eof) this.fill();
    if (this.end === this.start) return undefined;
    let len = cutPoint(this.gear, this.buf, this.start, this.end);
    if (len === this.end - this.start && len < this.gear.max && !this.eof) {
      // No boundary among the buffered bytes (or one right at their end): fill the buffer, which
      // then holds at least `max` bytes or the rest of the file, and scan again.
      this.fill();
      len = cutPoint(this.gear, this.buf, this.start, this.end);
    }
    const chunk = this.buf.subarray(this.start, this.start + len);
    this.start += len;
    return chunk;
  }
}
