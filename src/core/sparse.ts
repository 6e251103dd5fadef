// Writing file contents with holes: 64 KiB blocks of zeros are skipped, so sparse files stay
// sparse (the caller truncates the file to its size afterwards, which also covers trailing zeros).
// Non-zero blocks next to each other are written in one call. sparseRuns is the one place that
// decides what is written; writeSparse (main thread, async) and writeSparseSync (restore writer
// threads) only carry its runs to the file.
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { isAllZero } from './bytes.js';

export const SPARSE_BLOCK = 64 * 1024;

/** The [start, end) ranges of `data` to write: everything but whole zero blocks. */
export function sparseRuns(data: Uint8Array): [number, number][] {
  const runs: [number, number][] = [];
  let runStart = -1;
  for (let off = 0; off < data.length; off += SPARSE_BLOCK) {
    const zero = isAllZero(data.subarray(off, off + SPARSE_BLOCK));
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      runs.push([runStart, off]);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push([runStart, data.length]);
  return runs;
}

/** Write `data` at `pos` sparsely; returns the file offset just past the last byte written (0 if none). */
export async function writeSparse(fh: FileHandle, data: Buffer, pos: number): Promise<number> {
  let end = 0;
  for (const [start, stop] of sparseRuns(data)) {
    for (let off = start; off < stop; ) off += (await fh.write(data, off, stop - off, pos + off)).bytesWritten;
    end = pos + stop;
  }
  return end;
}

/** writeSparse with synchronous calls on a descriptor (writer threads). */
export function writeSparseSync(fd: number, data: Buffer, pos: number): number {
  let end = 0;
  for (const [start, stop] of sparseRuns(data)) {
    for (let off = start; off < stop; ) off += fs.writeSync(fd, data, off, stop - off, pos + off);
    end = pos + stop;
  }
  return end;
}
