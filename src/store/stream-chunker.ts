// Content-defined chunks of a stream of unknown length (a backup from stdin or a command's
// output), with the same boundaries the file chunker finds for the same bytes: a chunk is cut
// only once `max` bytes are buffered past its start (or the stream has ended), and cutPoint's
// answer depends only on the bytes up to the boundary. Holds at most `max` plus one incoming
// piece in memory.
import { cutPoint, type Gear } from './chunker.js';

/** The buffer streamChunks cuts in: twice the gear's largest chunk. */
export function chunkWindow(g: Gear): Buffer {
  return Buffer.allocUnsafeSlow(g.max * 2);
}

/**
 * Yields chunks as views of an internal buffer, each valid until the next one is asked for
 * (copy it to keep it). Counts the bytes in `total`. `window` (chunkWindow), when given, is that
 * buffer: a caller that cuts many streams one after the other gives the same one each time, where
 * a new one per stream (16 MiB with the default sizes) made `snap copy` of many small files spend
 * most of its time collecting them.
 */
export async function* streamChunks(g: Gear, input: AsyncIterable<Uint8Array>, total: { bytes: number }, window?: Buffer): AsyncGenerator<Buffer> {
  let buf = window && window.length >= g.max * 2 ? window : chunkWindow(g);
  let start = 0;
  let end = 0;
  for await (const piece of input) {
    total.bytes += piece.length;
    let off = 0;
    while (off < piece.length) {
      if (end === buf.length) {
        // Move the unconsumed tail to the front (less than `max` bytes: every full window was cut).
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
        if (end === buf.length) buf = Buffer.concat([buf, Buffer.allocUnsafe(g.max)]);
      }
      const n = Math.min(piece.length - off, buf.length - end);
      buf.set(piece.subarray(off, off + n), end);
      end += n;
      off += n;
      while (end - start >= g.max) {
        const len = cutPoint(g, buf, start, end);
        yield buf.subarray(start, start + len);
        start += len;
      }
    }
  }
  while (end > start) {
    const len = cutPoint(g, buf, start, end);
    yield buf.subarray(start, start + len);
    start += len;
  }
}
