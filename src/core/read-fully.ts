// A positioned read of a whole buffer with synchronous calls (a read may return fewer bytes than
// asked before the end of a file): content checks, the drill's comparisons, worker threads' reads.
import * as fs from 'node:fs';

/** Read `buf.length` bytes at `pos` of `fd` (fewer only at the end of the file); the count read. */
export function readFully(fd: number, buf: Buffer, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
