// Reads a file descriptor and yields content-defined chunks, holding at most two maximum-size
// chunks of the file in memory whatever the file's size. Reads are synchronous: warm-cache
// reads from Node are 3.4x faster sync than through fs.promises (shared/bench-kit/RESULTS.md §3.5).
import * as fs from 'node:fs';
import { cutPoint, type Gear } from './chunker.js';

const READ_SIZE = 1024 * 1024;

export class FileChunker {
  private buf: Buffer;
  private start = 0;
  private end = 0;
  private eof = false;
  private limit = Infinity;
  bytesRead = 0;

  constructor(private fd: number, private readonly gear: Gear) {
    this.buf = Buffer.allocUnsafe(gear.max + READ_SIZE);
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
    if (this.end - this.start < this.gear.max && !this.eof) this.fill();
    if (this.end === this.start) return undefined;
    const len = cutPoint(this.gear, this.buf, this.start, this.end);
    const chunk = this.buf.subarray(this.start, this.start + len);
    this.start += len;
    return chunk;
  }
}
