// A chunking thread (started by chunk-pool.ts from its compiled form in dist/; see
// core/worker-url.ts). It reads a window of a file into shared memory, cuts it into FastCDC chunks
// and computes each chunk's object id; the main thread then finds each chunk's bytes at their
// offset in the same shared buffer (no copy on the way back) and looks the ids up.
//
// A request holds no state between windows: each item names the file descriptor (opened by the
// main thread; descriptors are the process's), the file position to read from, the size the file
// had when it was opened (reading stops there, like FileChunker's limit) and, for a file that
// spans several windows, the bytes after the last cut of the previous window (the carry), which
// this thread copies to the front of the new window. A chunk is cut only where FileChunker would
// cut it: once `max` bytes follow its start, or the file has ended, or a boundary was found
// before the end of what is buffered (cutPoint's answer depends only on the bytes up to the
// boundary), so the chunks, and the ids, are exactly the in-process chunker's.
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { cutPoint, type Gear } from './chunker.js';
import { type CodecContext, objectId } from './object-codec.js';

/** What a chunking thread is started with. */
export interface ChunkWorkerData {
  gear: Gear;
  codec: CodecContext;
}

/** One file's window: read into `buf` at `at`, at most `cap` bytes (carry included). */
export interface ChunkItem {
  fd: number;
  /** File position of the first byte to read (after the carry). */
  pos: number;
  /** Stop reading at this file position: the size the file had when opened. */
  limit: number;
  at: number;
  cap: number;
  /** The previous window's uncut tail, copied to `at` first. */
  carry?: { buf: SharedArrayBuffer; off: number; len: number };
}

export interface ChunkRequest {
  id: number;
  buf: SharedArrayBuffer;
  items: ChunkItem[];
}

/** The outcome of one item. Chunk i is at `at` + the sum of lens[0..i) in the window. */
export interface ChunkResult {
  /** Bytes in the window: carry plus bytes read. */
  filled: number;
  /** File position after the read. */
  pos: number;
  /** The file ended (or reached its limit) in this window: everything in it was cut. */
  eof: boolean;
  lens: Int32Array;
  /** 32 bytes per chunk. */
  ids: Uint8Array;
  /** A read failed: the system error's code and message (the chunks before it are still valid). */
  error?: { code?: string; message: string };
}

export interface ChunkReply {
  id: number;
  results: ChunkResult[];
}

/** Process one item (also used in-process by tests). */
export function chunkItem(g: Gear, ctx: CodecContext, window: Buffer, item: ChunkItem): ChunkResult {
  let end = item.at;
  if (item.carry && item.carry.len > 0) {
    window.set(new Uint8Array(item.carry.buf, item.carry.off, item.carry.len), end);
    end += item.carry.len;
  }
  const stop = item.at + item.cap;
  let pos = item.pos;
  let eof = false;
  let error: ChunkResult['error'];
  while (end < stop) {
    const want = Math.min(stop - end, item.limit - pos);
    if (want <= 0) {
      eof = true;
      break;
    }
    let n: number;
    try {
      n = fs.readSync(item.fd, window, end, want, pos);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      error = { ...(typeof err.code === 'string' ? { code: err.code } : {}), message: String(err.message) };
      break;
    }
    if (n === 0) {
      eof = true;
      break;
    }
    end += n;
    pos += n;
  }
  if (!eof && !error && end === stop && item.limit - pos <= 0) eof = true;
  const lens: number[] = [];
  const ids: Buffer[] = [];
  let start = item.at;
  if (!error) {
    while (start < end) {
      const len = cutPoint(g, window, start, end);
      if (!eof && len === end - start && len < g.max) break; // no boundary yet: the next window decides
      ids.push(objectId(window.subarray(start, start + len), ctx));
      lens.push(len);
      start += len;
    }
  }
  // Own buffers (not views of Node's shared pool): they are transferred to the main thread.
  const idBytes = new Uint8Array(32 * ids.length);
  ids.forEach((id, i) => idBytes.set(id, 32 * i));
  return { filled: end - item.at, pos, eof, lens: Int32Array.from(lens), ids: idBytes, ...(error ? { error } : {}) };
}

if (parentPort && (workerData as { chunk?: ChunkWorkerData } | undefined)?.chunk) {
  const port = parentPort;
  const data = (workerData as { chunk: ChunkWorkerData }).chunk;
  port.on('message', (m: ChunkRequest) => {
    const window = Buffer.from(m.buf);
    const results = m.items.map((item) => chunkItem(data.gear, data.codec, window, item));
    const transfer: ArrayBuffer[] = [];
    for (const r of results) transfer.push(r.lens.buffer as ArrayBuffer, r.ids.buffer as ArrayBuffer);
    port.postMessage({ id: m.id, results } satisfies ChunkReply, transfer);
  });
}
