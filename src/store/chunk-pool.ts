// Chunking and hashing of files on worker threads (issue 16). The main thread of a backup walked,
// read, chunked (FastCDC), hashed and copied every byte one step after another; now it opens a
// file, hands its descriptor to a chunking thread (chunk-worker.ts), which reads the file into
// shared memory, cuts it and computes the chunk ids, and the main thread only looks the ids up
// and copies new chunks into the object store's compression ring, straight from the shared
// window the thread read them into. Several files are in flight at once (the caller bounds how
// many), on as many threads as the pool has.
//
// Memory is bounded: files up to SMALL_FILE bytes are read whole into a slot of a batch buffer
// (BATCH_BYTES, at most BATCH_BUFFERS of them), so a folder of small files costs one message per
// batch, not one per file; a larger file streams through two windows of `max + STEP` bytes
// (at most `threads` pairs): the thread reads and cuts the next window while the main thread
// takes the chunks of the previous one, whatever the file's size.
//
// Threads are started only when every running one has work, like the compression pool, and an
// idle thread does not keep the process alive.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SnapError } from '../core/errors.js';
import { workerUrl } from '../core/worker-url.js';
import type { Gear } from './chunker.js';
import type { ChunkItem, ChunkReply, ChunkRequest, ChunkResult, ChunkWorkerData } from './chunk-worker.js';
import type { CodecContext } from './object-codec.js';

/** Files up to this size are read whole, several to a batch. */
export const SMALL_FILE = 1024 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_FILES = 256;
const BATCH_BUFFERS = 3;
/** Bytes read into each window of a large file (after the previous window's uncut tail). */
const STEP = 2 * 1024 * 1024;

/** Chunking threads for this machine: one per core (the main thread mostly waits on them). */
export function defaultChunkWorkers(): number {
  return Math.min(4, Math.max(1, availableParallelism()));
}

/** Called for each chunk in file order; the chunk is a view of shared memory, valid until it resolves. */
export type ChunkSink = (chunk: Buffer, id: Buffer) => Promise<void>;

interface Slot {
  worker: Worker;
  outstanding: number;
}

interface Waiting {
  slot: Slot;
  resolve: (r: ChunkResult[]) => void;
  reject: (e: unknown) => void;
}

class Threads {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;

  constructor(private readonly data: ChunkWorkerData, private readonly max: number) {}

  private spawn(): Slot {
    const worker = new Worker(workerUrl('./chunk-worker.js', import.meta.url), { workerData: { chunk: this.data } });
    const slot: Slot = { worker, outstanding: 0 };
    worker.on('message', (m: ChunkReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (--slot.outstanding === 0) worker.unref();
      w.resolve(m.results);
    });
    const fail = (e: unknown): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, w] of this.waiting) {
        if (w.slot !== slot) continue;
        this.waiting.delete(id);
        w.reject(new SnapError('SNAP_INTERNAL', `a chunking thread failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`it exited (code ${code})`)));
    worker.unref(); // after the listeners: adding a 'message' listener refs the port again
    return slot;
  }

  run(buf: SharedArrayBuffer, items: ChunkItem[]): Promise<ChunkResult[]> {
    let slot: Slot | undefined;
    for (const s of this.slots) if (!slot || s.outstanding < slot.outstanding) slot = s;
    if (!slot || (slot.outstanding > 0 && this.slots.length < this.max)) this.slots.push((slot = this.spawn()));
    const id = this.nextId++;
    if (slot.outstanding++ === 0) slot.worker.ref(); // a request in flight keeps the process alive
    const s = slot;
    return new Promise<ChunkResult[]>((resolve, reject) => {
      this.waiting.set(id, { slot: s, resolve, reject });
      s.worker.postMessage({ id, buf, items } satisfies ChunkRequest);
    });
  }
}

interface Batch {
  buf: SharedArrayBuffer;
  used: number;
  items: ChunkItem[];
  sent: boolean;
  /** Settles with the thread's answer once the batch was sent. */
  result: Promise<ChunkResult[]>;
  answer: (r: Promise<ChunkResult[]>) => void;
  /** Items not yet taken by their callers: the buffer is free again at 0. */
  refs: number;
}

/** A queue of waiters for a bounded resource. */
class Gate {
  private waiters: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise<void>((r) => this.waiters.push(r));
  }
  wake(): void {
    this.waiters.shift()?.();
  }
}

export class ChunkPool {
  private readonly threads: Threads;
  private open: Batch | undefined;
  private sendScheduled = false;
  private readonly freeBatches: SharedArrayBuffer[] = [];
  private batchesMade = 0;
  private readonly batchGate = new Gate();
  private readonly freeWindows: [SharedArrayBuffer, SharedArrayBuffer][] = [];
  private windowsMade = 0;
  private readonly windowGate = new Gate();
  private readonly windowBytes: number;

  constructor(private readonly gear: Gear, ctx: CodecContext, private readonly workers: number) {
    this.threads = new Threads({ gear, codec: ctx }, workers);
    this.windowBytes = gear.max + STEP;
  }

  /**
   * Chunk the file open at `fd` from its start, reading at most `limit` bytes (its size when it was
   * opened), calling `sink` for each chunk in order. Resolves to the bytes read; a failed read
   * throws the system error (with its code), after the chunks before it were given to `sink`.
   */
  async file(fd: number, limit: number, sink: ChunkSink): Promise<number> {
    if (limit <= 0) return 0;
    if (limit <= SMALL_FILE) return this.smallFile(fd, limit, sink);
    return this.largeFile(fd, limit, sink);
  }

  private async smallFile(fd: number, limit: number, sink: ChunkSink): Promise<number> {
    const { batch, item } = await this.place(fd, limit);
    try {
      const results = await batch.result;
      return await consume(batch.buf, item.at, results[batch.items.indexOf(item)]!, sink);
    } finally {
      if (--batch.refs === 0) {
        this.freeBatches.push(batch.buf);
        this.batchGate.wake();
      }
    }
  }

  /** Put a file into the open batch (a new one when it does not fit). */
  private async place(fd: number, limit: number): Promise<{ batch: Batch; item: ChunkItem }> {
    for (;;) {
      const b = this.open;
      if (b && !b.sent && b.used + limit <= BATCH_BYTES && b.items.length < BATCH_FILES) {
        const item: ChunkItem = { fd, pos: 0, limit, at: b.used, cap: limit };
        b.items.push(item);
        b.used += limit;
        b.refs++;
        if (b.items.length >= BATCH_FILES || b.used >= BATCH_BYTES) this.send(b);
        else if (!this.sendScheduled) {
          // A batch never waits for more files once this thread has nothing else to do.
          this.sendScheduled = true;
          setImmediate(() => {
            this.sendScheduled = false;
            if (this.open) this.send(this.open);
          });
        }
        return { batch: b, item };
      }
      if (b) this.send(b);
      let buf = this.freeBatches.pop();
      if (!buf && this.batchesMade < BATCH_BUFFERS) {
        this.batchesMade++;
        buf = new SharedArrayBuffer(BATCH_BYTES);
      }
      if (!buf) {
        await this.batchGate.wait();
        continue;
      }
      if (this.open) {
        // Another file opened a batch while this one waited.
        this.freeBatches.push(buf);
        continue;
      }
      let answer!: (r: Promise<ChunkResult[]>) => void;
      const result = new Promise<ChunkResult[]>((r) => (answer = r));
      result.catch(() => {}); // each item's caller sees a failure
      this.open = { buf, used: 0, items: [], sent: false, result, answer, refs: 0 };
    }
  }

  private send(b: Batch): void {
    if (this.open === b) this.open = undefined;
    if (b.sent) return;
    b.sent = true;
    if (b.items.length > 0) b.answer(this.threads.run(b.buf, b.items));
    else {
      this.freeBatches.push(b.buf);
      this.batchGate.wake();
    }
  }

  private async largeFile(fd: number, limit: number, sink: ChunkSink): Promise<number> {
    let pair = this.freeWindows.pop();
    while (!pair) {
      if (this.windowsMade < this.workers) {
        this.windowsMade++;
        pair = [new SharedArrayBuffer(this.windowBytes), new SharedArrayBuffer(this.windowBytes)];
      } else {
        await this.windowGate.wait();
        pair = this.freeWindows.pop();
      }
    }
    let [cur, other] = pair;
    let next = this.threads.run(cur, [{ fd, pos: 0, limit, at: 0, cap: STEP }]);
    let pending: Promise<unknown> | undefined = next; // a request the thread may still be working on
    let size = 0;
    try {
      for (;;) {
        const r = (await next)[0]!;
        pending = undefined;
        if (!r.eof && !r.error) {
          // The thread reads and cuts the next window while this one's chunks are taken.
          let cut = 0;
          for (const n of r.lens) cut += n;
          const tail = r.filled - cut;
          next = this.threads.run(other, [{ fd, pos: r.pos, limit, at: 0, cap: tail + STEP, ...(tail > 0 ? { carry: { buf: cur, off: cut, len: tail } } : {}) }]);
          next.catch(() => {}); // awaited next round, or in finally
          pending = next;
        }
        size += await consume(cur, 0, r, sink);
        if (r.eof || r.error) return size;
        [cur, other] = [other, cur];
      }
    } finally {
      if (pending) await pending.catch(() => {});
      this.freeWindows.push(pair);
      this.windowGate.wake();
    }
  }
}

/** Give a window's chunks to the sink; rethrow its read error afterwards. Returns the bytes taken. */
async function consume(buf: SharedArrayBuffer, at: number, r: ChunkResult, sink: ChunkSink): Promise<number> {
  const view = Buffer.from(buf);
  const ids = Buffer.from(r.ids.buffer, r.ids.byteOffset, r.ids.byteLength);
  let off = at;
  for (let i = 0; i < r.lens.length; i++) {
    const len = r.lens[i]!;
    await sink(view.subarray(off, off + len), ids.subarray(32 * i, 32 * i + 32));
    off += len;
  }
  if (r.error) throw Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {});
  return off - at;
}

const pools = new WeakMap<Gear, { ctx: CodecContext; workers: number; pool: ChunkPool }>();

/** The chunk pool of a repository's gear (one per process: `snap watch` backs up again and again). */
export function chunkPool(gear: Gear, ctx: CodecContext, workers: number): ChunkPool {
  const p = pools.get(gear);
  if (p && p.ctx === ctx && p.workers === workers) return p.pool;
  const pool = new ChunkPool(gear, ctx, workers);
  pools.set(gear, { ctx, workers, pool });
  return pool;
}
